FROM python:3.12-slim
RUN pip install --no-cache-dir mkdocs==1.6.1
WORKDIR /site
COPY mkdocs.yml ./
COPY content/ ./content/
RUN mkdocs build --site-dir /srv/site
EXPOSE 4000
CMD ["python", "-m", "http.server", "4000", "--directory", "/srv/site"]
