from django.http import HttpResponse
from django.urls import path

urlpatterns = [
    path("healthz", lambda request: HttpResponse("ok")),
    path("", lambda request: HttpResponse("hello from servin.kdl")),
]
