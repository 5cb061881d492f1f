"""Clean-up when a post or file row goes, however it goes (a service, a user's cascade, the
admin): its guardian object rights, and for a file the stored object once the deletion commits."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_delete
from django.dispatch import receiver
from guardian.models import GroupObjectPermission, UserObjectPermission

from backend.content.models import File, Post


def _drop_object_rights(instance: Post | File) -> None:
    content_type = ContentType.objects.get_for_model(type(instance))
    for model in (UserObjectPermission, GroupObjectPermission):
        model.objects.filter(content_type=content_type, object_pk=str(instance.pk)).delete()


@receiver(post_delete, sender=Post)
def post_deleted(sender: type[Post], instance: Post, **kwargs: Any) -> None:
    _drop_object_rights(instance)


@receiver(post_delete, sender=File)
def file_deleted(sender: type[File], instance: File, **kwargs: Any) -> None:
    from backend.content.services import delete_stored_on_commit

    _drop_object_rights(instance)
    delete_stored_on_commit(instance.storage_name)
