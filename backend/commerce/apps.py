from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "backend.commerce"
    label = "commerce"
    verbose_name = "Commerce"
