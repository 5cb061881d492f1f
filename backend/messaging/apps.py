from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "backend.messaging"
    label = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Registers the room topic kind with the realtime core.
        from backend.messaging import topics  # noqa: F401
