"""The one permission rule on MariaDB: role, implied "any" right, object right, inactive,
anonymous and superuser; filter_by_perm in one query; declarations and seeding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm

from backend.accounts.catalog import default_roles
from backend.accounts.models import User
from backend.accounts.seeding import seed_roles_and_permissions
from backend.core.errors import NotFound, PermissionDenied
from backend.core.permissions import (
    PermissionSpec,
    catalog_name,
    filter_by_perm,
    grant_perm,
    has_perm,
    permission_names,
    permission_rows,
    registry,
    require_perm,
    revoke_perm,
)
from backend.messaging.models import Room
from tests.factories import RoomFactory, UserFactory

pytestmark = pytest.mark.django_db

VIEW = "testrooms.view"
VIEW_ANY = "testrooms.view_any"


@pytest.fixture
def room_rights() -> Iterator[None]:
    """A right on rooms and its "any" right, declared for the test only (rows seeded in the
    test's transaction)."""
    registry.all()  # discover the real declarations first
    specs = (
        PermissionSpec(VIEW_ANY, "See every room", "messaging.Room"),
        PermissionSpec(VIEW, "See a room", "messaging.Room", implied_by=(VIEW_ANY,)),
    )
    for spec in specs:
        registry.register(spec)
    try:
        seed_roles_and_permissions()
        yield
    finally:
        for spec in specs:
            registry.unregister(spec.name)


def _user_with_role_holding(*names: str, **fields: object) -> User:
    group = Group.objects.create(name=f"holds {' '.join(names)}")
    group.permissions.set(permission_rows(names))
    return UserFactory(roles=[group.name], **fields)


@pytest.fixture
def rooms() -> list[Room]:
    return [RoomFactory() for _ in range(3)]


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # Django caches a user's global rights per instance


# --- has_perm / require_perm ------------------------------------------------------------------
def test_a_role_gives_the_right_on_every_object(room_rights: None, rooms: list[Room]) -> None:
    holder, stranger = _user_with_role_holding(VIEW), UserFactory(roles=[])
    assert has_perm(holder, VIEW)
    assert all(has_perm(holder, VIEW, room) for room in rooms)
    assert not has_perm(stranger, VIEW)
    assert not any(has_perm(stranger, VIEW, room) for room in rooms)
    assert not has_perm(holder, VIEW_ANY)  # the implication goes one way only


def test_the_any_right_implies_the_right_on_every_object(
    room_rights: None, rooms: list[Room]
) -> None:
    overseer = _user_with_role_holding(VIEW_ANY)
    assert has_perm(overseer, VIEW)
    assert all(has_perm(overseer, VIEW, room) for room in rooms)
    assert permission_names(overseer) == [VIEW, VIEW_ANY]


def test_an_object_right_covers_that_object_only(room_rights: None, rooms: list[Room]) -> None:
    guest = UserFactory(roles=[])
    shared, private, _ = rooms
    grant_perm(guest, VIEW, shared)
    grant_perm(guest, VIEW, shared)  # idempotent
    assert UserObjectPermission.objects.filter(user=guest, object_pk=str(shared.pk)).count() == 1
    assert has_perm(guest, VIEW, shared)
    assert not has_perm(guest, VIEW, private)
    assert not has_perm(guest, VIEW)  # no global right came with it
    assert VIEW not in permission_names(guest)
    require_perm(guest, VIEW, shared)
    with pytest.raises(PermissionDenied):
        require_perm(guest, VIEW, private)
    with pytest.raises(NotFound):
        require_perm(guest, VIEW, private, hide=True)

    revoke_perm(guest, VIEW, shared)
    revoke_perm(guest, VIEW, shared)  # revoking what is not held is a no-op
    assert not has_perm(_fresh(guest), VIEW, shared)


def test_an_object_right_of_a_role_counts_for_its_members(
    room_rights: None, rooms: list[Room]
) -> None:
    group = Group.objects.create(name="Room keepers")
    member = UserFactory(roles=[group.name])
    assign_perm(permission_rows([VIEW]).get(), group, rooms[1])
    assert has_perm(member, VIEW, rooms[1])
    assert not has_perm(member, VIEW, rooms[0])
    assert list(filter_by_perm(member, Room.objects.all(), VIEW)) == [rooms[1]]


def test_an_inactive_user_holds_nothing(room_rights: None, rooms: list[Room]) -> None:
    user = _user_with_role_holding(VIEW, VIEW_ANY, "users.view", is_active=False)
    grant_perm(user, VIEW, rooms[0])
    assert not has_perm(user, VIEW)
    assert not has_perm(user, VIEW, rooms[0])
    assert not has_perm(user, "users.view")
    assert permission_names(user) == []
    assert list(filter_by_perm(user, Room.objects.all(), VIEW)) == []
    with pytest.raises(PermissionDenied):
        require_perm(user, "users.view")


@pytest.mark.parametrize("anonymous", [AnonymousUser(), None], ids=["AnonymousUser", "None"])
def test_anonymous_holds_nothing(
    room_rights: None, rooms: list[Room], anonymous: AnonymousUser | None
) -> None:
    assert not has_perm(anonymous, VIEW)
    assert not has_perm(anonymous, VIEW, rooms[0])
    assert permission_names(anonymous) == []
    assert list(filter_by_perm(anonymous, Room.objects.all(), VIEW)) == []
    with pytest.raises(NotFound):
        require_perm(anonymous, VIEW, rooms[0], hide=True)


def test_a_superuser_holds_everything_without_a_role(room_rights: None, rooms: list[Room]) -> None:
    root = UserFactory(roles=[], is_superuser=True)
    assert has_perm(root, VIEW, rooms[0])
    assert has_perm(root, "users.delete")
    assert list(filter_by_perm(root, Room.objects.all(), VIEW)) == rooms
    assert permission_names(root) == sorted(registry.names())
    inactive_root = UserFactory(roles=[], is_superuser=True, is_active=False)
    assert not has_perm(inactive_root, VIEW)


def test_a_direct_global_grant_counts(room_rights: None, rooms: list[Room]) -> None:
    user = UserFactory(roles=[])
    user.user_permissions.add(permission_rows([VIEW_ANY]).get())
    user = _fresh(user)
    assert has_perm(user, VIEW, rooms[2])
    assert list(filter_by_perm(user, Room.objects.all(), VIEW)) == rooms


def test_unknown_names_and_wrong_models_fail_loudly(room_rights: None, rooms: list[Room]) -> None:
    user = UserFactory()
    with pytest.raises(ValueError, match="unknown permission"):
        has_perm(user, "rooms.fly")
    with pytest.raises(ValueError, match=r"granted on accounts\.User"):
        has_perm(user, "users.view", rooms[0])
    with pytest.raises(ValueError, match=r"granted on messaging\.Room"):
        grant_perm(user, VIEW, user)
    with pytest.raises(ValueError, match=r"filters messaging\.Room rows"):
        filter_by_perm(user, User.objects.all(), VIEW)


# --- filter_by_perm ---------------------------------------------------------------------------
def test_filter_by_perm_answers_each_kind_of_holder(room_rights: None, rooms: list[Room]) -> None:
    guest, nobody = UserFactory(roles=[]), UserFactory(roles=[])
    grant_perm(guest, VIEW, rooms[0])
    grant_perm(guest, VIEW, rooms[2])
    everyone = Room.objects.order_by("id")
    assert list(filter_by_perm(guest, everyone, VIEW)) == [rooms[0], rooms[2]]
    assert list(filter_by_perm(nobody, everyone, VIEW)) == []
    assert list(filter_by_perm(_user_with_role_holding(VIEW), everyone, VIEW)) == rooms
    assert list(filter_by_perm(_user_with_role_holding(VIEW_ANY), everyone, VIEW)) == rooms
    # It composes: the caller's own filters stay.
    narrowed = filter_by_perm(guest, everyone.filter(pk__gt=rooms[0].pk), VIEW)
    assert list(narrowed) == [rooms[2]]


@pytest.mark.parametrize("holder", ["object rights", "role", "any right", "none"])
def test_filter_by_perm_is_one_query_however_many_rows(
    room_rights: None, django_assert_num_queries, holder: str
) -> None:
    many = [RoomFactory() for _ in range(25)]
    user = {
        "object rights": lambda: UserFactory(roles=[]),
        "role": lambda: _user_with_role_holding(VIEW),
        "any right": lambda: _user_with_role_holding(VIEW_ANY),
        "none": lambda: UserFactory(roles=[]),
    }[holder]()
    if holder == "object rights":
        for room in many[::2]:
            grant_perm(user, VIEW, room)
    user = _fresh(user)  # no cached rights: the count includes every check
    with django_assert_num_queries(1):
        visible = list(filter_by_perm(user, Room.objects.all(), VIEW))
    expected = {"object rights": many[::2], "role": many, "any right": many, "none": []}
    assert visible == expected[holder]


# --- declarations and seeding -----------------------------------------------------------------
def test_every_declared_permission_has_a_dot_free_codename_on_its_model() -> None:
    specs = registry.all()
    assert {"users.view", "roles.manage", "chat.use", "orders.view_any"} <= {s.name for s in specs}
    for spec in specs:
        assert "." not in spec.codename
        row = permission_rows([spec.name]).select_related("content_type").get()
        assert row.content_type == ContentType.objects.get_for_model(spec.model_class())
        assert catalog_name(row) == spec.name
    by_name = {s.name: s for s in specs}
    assert by_name["chat.use"].model == "messaging.Room"
    assert by_name["roles.manage"].model == "accounts.Role"
    assert by_name["users.update"].model == "accounts.User"


def test_default_roles_follow_the_declarations_and_admin_holds_all() -> None:
    roles = default_roles()
    assert set(roles["Admin"][1]) == registry.names()
    for spec in registry.all():
        for role in spec.roles:
            assert spec.name in roles[role][1]
    assert "chat.use" in roles["Customer"][1]
    assert "products.manage" in roles["Editor"][1]
    assert "users.view" not in roles["Editor"][1]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (("usersview", "d", "accounts.User"), "look like"),
        (("users.view.all", "d", "accounts.User"), "look like"),
    ],
)
def test_malformed_names_are_refused(spec: tuple[str, str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        PermissionSpec(*spec)


def test_a_permission_declared_twice_is_refused() -> None:
    registry.all()
    with pytest.raises(ValueError, match="declared twice"):
        registry.register(PermissionSpec("users.view", "again", "accounts.User"))


def test_seeding_moves_a_permission_to_its_new_model_and_keeps_role_assignments() -> None:
    """The row of chat.use as it was before it moved (dotted codename on accounts.User):
    seeding updates that row in place, so the roles holding it keep it."""
    row = permission_rows(["chat.use"]).get()
    holders = set(row.group_set.values_list("name", flat=True))
    assert {"Customer", "Editor", "Admin"} <= holders
    hand_made = Group.objects.create(name="Chatters")
    hand_made.permissions.add(row)
    user_ct = ContentType.objects.get_for_model(User)
    Permission.objects.filter(pk=row.pk).update(content_type=user_ct, codename="chat.use")

    seed_roles_and_permissions()
    seed_roles_and_permissions()  # idempotent

    moved = Permission.objects.get(pk=row.pk)
    assert moved.codename == "chat_use"
    assert moved.content_type == ContentType.objects.get_for_model(Room)
    assert set(moved.group_set.values_list("name", flat=True)) == holders | {"Chatters"}
    assert Permission.objects.filter(codename__in=["chat_use", "chat.use"]).count() == 1
    customer = UserFactory(roles=["Customer"])
    assert has_perm(customer, "chat.use")


def test_seeding_merges_a_stale_duplicate_row_into_the_declared_one() -> None:
    row = permission_rows(["chat.use"]).get()
    stale = Permission.objects.create(
        content_type=ContentType.objects.get_for_model(User), codename="chat.use", name="old"
    )
    only_stale = Group.objects.create(name="Old chatters")
    only_stale.permissions.add(stale)

    seed_roles_and_permissions()

    assert not Permission.objects.filter(pk=stale.pk).exists()
    assert permission_rows(["chat.use"]).get().pk == row.pk
    assert list(only_stale.permissions.all()) == [row]


def test_a_default_role_that_does_not_exist_is_refused() -> None:
    registry.all()
    registry.register(PermissionSpec("testrooms.paint", "d", "messaging.Room", roles=("Painter",)))
    try:
        with pytest.raises(ValueError, match="Painter"):
            default_roles()
    finally:
        registry.unregister("testrooms.paint")


def test_an_implication_by_an_undeclared_right_is_refused() -> None:
    registry.all()
    registry.register(PermissionSpec("testrooms.x", "d", "messaging.Room", implied_by=("a.b",)))
    try:
        with pytest.raises(ValueError, match="undeclared"):
            registry.validate()
    finally:
        registry.unregister("testrooms.x")
