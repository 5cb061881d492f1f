from django.contrib import admin
from django.urls import path
from django.views.generic import TemplateView

from api.main import api
from api.operations.router import health_view, metrics_view
from api.urls import grouped

urlpatterns = [
    path("api/v1/", grouped(api.urls)),
    # Root aliases for load balancers and Prometheus scrapers.
    path("health", health_view, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    # The live dashboard page (static HTML + the JS client; data over the API and the socket).
    path(
        "dashboard/",
        TemplateView.as_view(template_name="dashboard/index.html"),
        name="dashboard-page",
    ),
]
