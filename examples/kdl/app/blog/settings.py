"""Settings of the KDL example's Django project, read from the environment."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = Path(os.environ["DJANGO_SECRET_KEY_FILE"]).read_text().strip()
DEBUG = os.environ.get("DEBUG") == "1"
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
ROOT_URLCONF = "blog.urls"
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = 1025
MEDIA_ROOT = "/srv/media"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL")
