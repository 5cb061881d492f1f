from django.contrib import admin
from django.urls import path

from api.main import api
from api.operations.router import health_view, metrics_view

urlpatterns = [
    path("api/v1/", api.urls),
    # Root aliases for load balancers and Prometheus scrapers.
    path("health", health_view, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]
