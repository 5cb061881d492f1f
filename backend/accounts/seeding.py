"""Idempotent creation of the catalog's permissions and default roles."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from backend.accounts.catalog import PERMISSIONS, ROLES

logger = logging.getLogger(__name__)


def seed_roles_and_permissions() -> None:
    """Create missing permissions and roles; grant each default role its catalog rights.

    Rights an admin added to a role by hand are left alone; descriptions follow the catalog.
    """
    from backend.accounts.models import Role, User

    content_type = ContentType.objects.get_for_model(User)
    with transaction.atomic():
        permissions: dict[str, Permission] = {}
        for spec in PERMISSIONS:
            permission, _ = Permission.objects.update_or_create(
                content_type=content_type,
                codename=spec.name,
                defaults={"name": spec.description},
            )
            permissions[spec.name] = permission
        for role_name, (description, granted) in ROLES.items():
            group, _ = Group.objects.get_or_create(name=role_name)
            Role.objects.update_or_create(group=group, defaults={"description": description})
            group.permissions.add(*(permissions[name] for name in granted))


def seed_after_migrate(**kwargs: Any) -> None:
    seed_roles_and_permissions()
    logger.debug("default roles and permissions are in place")
