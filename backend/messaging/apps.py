from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "backend.messaging"
    label = "messaging"
    verbose_name = "Messaging"
