from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "backend.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from backend.accounts.seeding import seed_after_migrate

        # post_migrate also fires after every flush, so transactional tests and fresh
        # databases alike always have the default roles and permissions.
        post_migrate.connect(seed_after_migrate, sender=self)
