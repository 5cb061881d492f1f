"""django-guardian is wired: object-level rights sit beside the role-level ones."""

import pytest
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from tests.factories import RoomFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_right_on_one_object_does_not_extend_to_others() -> None:
    colleague, stranger = UserFactory(), UserFactory()
    shared, private = RoomFactory(), RoomFactory()
    assign_perm("messaging.view_room", colleague, shared)

    assert colleague.has_perm("messaging.view_room", shared)
    assert not colleague.has_perm("messaging.view_room", private)
    assert not colleague.has_perm("messaging.view_room")  # no role-level right came with it
    assert not stranger.has_perm("messaging.view_room", shared)
    # Lists filter in the database, not row by row.
    assert list(get_objects_for_user(colleague, "messaging.view_room")) == [shared]


def test_revoked_object_right_is_gone() -> None:
    user, room = UserFactory(), RoomFactory()
    assign_perm("messaging.view_room", user, room)
    remove_perm("messaging.view_room", user, room)
    fresh = type(user).objects.get(pk=user.pk)  # Django caches rights per instance
    assert not fresh.has_perm("messaging.view_room", room)


def test_inactive_user_holds_no_object_right() -> None:
    user, room = UserFactory(), RoomFactory()
    assign_perm("messaging.view_room", user, room)
    user.is_active = False
    user.save()
    fresh = type(user).objects.get(pk=user.pk)
    assert not fresh.has_perm("messaging.view_room", room)
