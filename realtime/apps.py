from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    label = "realtime"
    verbose_name = "Realtime"

    def ready(self) -> None:
        # The core's own topic kinds (user.{id}, dashboard).
        from realtime import builtin_topics  # noqa: F401
