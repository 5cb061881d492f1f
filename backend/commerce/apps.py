from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CommerceConfig(AppConfig):
    name = "backend.commerce"
    label = "commerce"
    verbose_name = "Commerce"

    def ready(self) -> None:
        from backend.commerce.seeding import seed_default_template

        # post_migrate also fires after a flush (transactional tests): the default
        # template is always there, as migration 0002 first made it.
        post_migrate.connect(seed_default_template, sender=self)
        # Collect the declared permissions now, while the process is single-threaded: the
        # registry's lazy discovery is not thread-safe, and a server's first requests
        # arrive together (seen as "declared twice" under concurrent first orders).
        from backend.core.permissions import registry

        registry.autodiscover()
        # Users online is a dashboard figure: a socket opening or closing refreshes it.
        from backend.commerce import dashboard
        from realtime.presence import online_changed

        online_changed.connect(dashboard.online_changed, dispatch_uid="commerce.dashboard")
