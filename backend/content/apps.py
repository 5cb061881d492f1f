from django.apps import AppConfig


class ContentConfig(AppConfig):
    name = "backend.content"
    label = "content"
    verbose_name = "Content"

    def ready(self) -> None:
        # Deleting a post or file (also through a user's cascade) removes its object rights
        # and, for files, the stored object.
        from backend.content import signals  # noqa: F401
