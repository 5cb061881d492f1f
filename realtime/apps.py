from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    label = "realtime"
    verbose_name = "Realtime"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        # Each app declares its topic kinds in <app>/topics.py and its client frame types in
        # <app>/frames.py; registering a name twice raises here, at start.
        autodiscover_modules("topics")
        autodiscover_modules("frames")
