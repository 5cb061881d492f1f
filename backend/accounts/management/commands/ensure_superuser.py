"""``manage.py ensure_superuser``: create the operator's superuser from the environment.

Reads DJANGO_SUPERUSER_EMAIL, DJANGO_SUPERUSER_PASSWORD and (optionally)
DJANGO_SUPERUSER_NAME. Idempotent: an existing user with that email is left as it is (its
password is not changed) and only made sure to hold the Admin role. Without the email and the
password it does nothing and says so, so start scripts can always call it.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from backend.accounts.services import superuser_ensure


class Command(BaseCommand):
    help = (
        "Ensure the superuser named by DJANGO_SUPERUSER_EMAIL / DJANGO_SUPERUSER_PASSWORD "
        "(and DJANGO_SUPERUSER_NAME) exists and holds the Admin role; skip when they are unset."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        name = os.environ.get("DJANGO_SUPERUSER_NAME", "").strip()
        if not email or not password:
            self.stdout.write(
                "ensure_superuser: skipped (set DJANGO_SUPERUSER_EMAIL and "
                "DJANGO_SUPERUSER_PASSWORD to create one)"
            )
            return
        user = superuser_ensure(email=email, password=password, name=name or email.split("@")[0])
        self.stdout.write(self.style.SUCCESS(f"ensure_superuser: {user.email} is a superuser"))
