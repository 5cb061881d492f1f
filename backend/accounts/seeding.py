"""Idempotent creation of the declared permissions and the default roles."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from backend.accounts.catalog import default_roles
from backend.core.permissions import PermissionSpec, registry

logger = logging.getLogger(__name__)


def _permission_row(spec: PermissionSpec) -> Permission:
    """The one row of ``spec`` on its model's content type, created or moved there.

    A row may exist under the spec's codename on another content type (the permission
    moved to another app's model) or under the old dotted codename: it is updated in place,
    so roles and users keep it. Duplicates are merged into one row."""
    content_type = ContentType.objects.get_for_model(spec.model_class())
    rows = list(Permission.objects.filter(codename__in=(spec.codename, spec.name)).order_by("id"))
    row = next(
        (r for r in rows if r.content_type_id == content_type.pk and r.codename == spec.codename),
        rows[0] if rows else None,
    )
    if row is None:
        return Permission.objects.create(
            content_type=content_type, codename=spec.codename, name=spec.description
        )
    for duplicate in rows:
        if duplicate.pk != row.pk:
            row.group_set.add(*duplicate.group_set.all())
            row.user_set.add(*duplicate.user_set.all())
            duplicate.delete()
    if (row.content_type_id, row.codename, row.name) != (
        content_type.pk,
        spec.codename,
        spec.description,
    ):
        moved = row.content_type_id != content_type.pk
        row.content_type, row.codename, row.name = content_type, spec.codename, spec.description
        row.save(update_fields=["content_type", "codename", "name"])
        if moved:
            _drop_object_rights_on_other_models(row)
            logger.info("permission %s moved to %s", spec.name, spec.model)
    return row


def _drop_object_rights_on_other_models(permission: Permission) -> None:
    """Object rights granted on objects of the permission's previous model mean nothing now."""
    from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

    for model in (get_user_obj_perms_model(), get_group_obj_perms_model()):
        model._default_manager.filter(permission=permission).exclude(
            content_type=permission.content_type
        ).delete()


def seed_roles_and_permissions() -> None:
    """Create or move every declared permission and create the default roles; grant each
    default role its rights. Rights an admin added to a role by hand are left alone;
    descriptions follow the declarations."""
    from backend.accounts.models import Role

    with transaction.atomic():
        permissions = {spec.name: _permission_row(spec) for spec in registry.all()}
        for role_name, (description, granted) in default_roles().items():
            group, _ = Group.objects.get_or_create(name=role_name)
            Role.objects.update_or_create(group=group, defaults={"description": description})
            group.permissions.add(*(permissions[name] for name in granted))


def seed_after_migrate(**kwargs: Any) -> None:
    seed_roles_and_permissions()
    logger.debug("default roles and permissions are in place")
