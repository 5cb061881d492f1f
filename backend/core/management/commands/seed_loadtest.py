"""``manage.py seed_loadtest``: the accounts and data the locust scenarios (loadtests/) expect.

Creates (idempotently: a second run tops up and changes nothing else) ``--users`` customers
``loadtest-<i>@example.com`` and one staff user ``loadtest-staff@example.com`` (Admin role),
all with the password ``--password``; ``--products`` products with at least ``--stock`` each;
``--rooms`` chat rooms whose members are all the load-test users. Accounts are made here, not
through ``/auth/register``, so seeding never meets the registration limit of the target.

``--tokens-out FILE`` also issues one bearer token per account and writes them as JSON
(``{"staff": {...}, "users": [{"id", "email", "token"}, ...]}``): locust then needs no login
at all, so the per-address login limit does not matter either.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from backend.accounts.catalog import ADMIN, CUSTOMER
from backend.accounts.models import User
from backend.accounts.tokens import token_issue
from backend.commerce.models import Product
from backend.commerce.services import product_create, product_update
from backend.messaging.models import Room, RoomMembership
from backend.messaging.services import room_create

STAFF_EMAIL = "loadtest-staff@example.com"
USER_EMAIL = "loadtest-{index}@example.com"
PRODUCT_NAME = "Load test product {index}"
ROOM_NAME = "Load test room {index}"
# Words the shopper's searches use; every product description holds some of them.
WORDS = ("red", "blue", "green", "steel", "wooden", "small", "large", "classic", "modern", "eco")


class Command(BaseCommand):
    help = "Create (or top up) the load-test users, staff user, products and rooms."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=200)
        parser.add_argument("--password", default="loadtest-password-2026")
        parser.add_argument("--products", type=int, default=50)
        parser.add_argument("--stock", type=int, default=1_000_000)
        parser.add_argument("--rooms", type=int, default=5)
        parser.add_argument("--tokens-out", default="", help="write bearer tokens here (JSON)")

    def handle(self, *args: Any, **options: Any) -> None:
        password: str = options["password"]
        staff = self._ensure_staff(password)
        users = self._ensure_users(options["users"], password)
        self._ensure_products(staff, options["products"], options["stock"])
        self._ensure_rooms(staff, options["rooms"], users)
        if options["tokens_out"]:
            self._write_tokens(Path(options["tokens_out"]), staff, users)
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_loadtest: {len(users)} users, staff {staff.email}, "
                f"{options['products']} products, {options['rooms']} rooms"
            )
        )

    def _ensure_staff(self, password: str) -> User:
        staff = User.objects.filter(email=STAFF_EMAIL).first()
        if staff is None:
            staff = User.objects.create_user(
                email=STAFF_EMAIL, password=password, name="Load test staff", is_staff=True
            )
        elif not staff.check_password(password):
            staff.set_password(password)
            staff.save(update_fields=["password"])
        staff.groups.add(Group.objects.get(name=ADMIN))
        return staff

    def _ensure_users(self, count: int, password: str) -> list[User]:
        emails = [USER_EMAIL.format(index=i) for i in range(count)]
        existing = set(User.objects.filter(email__in=emails).values_list("email", flat=True))
        # One hash for every account: hashing is deliberately slow, and they share a password.
        hashed = make_password(password)
        with transaction.atomic():
            User.objects.bulk_create(
                [
                    User(email=email, name=f"Load test user {i}", password=hashed)
                    for i, email in enumerate(emails)
                    if email not in existing
                ]
            )
            # Existing accounts get the (possibly new) password too: the scenarios log in.
            User.objects.filter(email__in=emails).update(password=hashed, is_active=True)
            users = list(User.objects.filter(email__in=emails).order_by("id"))
            customer = Group.objects.get(name=CUSTOMER)
            customer.user_set.add(*users)
        return users

    def _ensure_products(self, staff: User, count: int, stock: int) -> None:
        for i in range(count):
            name = PRODUCT_NAME.format(index=i)
            words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(3))
            product = Product.objects.filter(name=name).first()
            if product is None:
                product_create(
                    actor=staff,
                    name=name,
                    description=f"A {words} thing for load tests.",
                    price=Decimal(f"{5 + i % 95}.50"),
                    stock=stock,
                )
            elif product.stock < stock:
                product_update(actor=staff, product_id=product.pk, changes={"stock": stock})

    def _ensure_rooms(self, staff: User, count: int, users: list[User]) -> None:
        for i in range(count):
            name = ROOM_NAME.format(index=i)
            room = Room.objects.filter(name=name, created_by=staff).first()
            if room is None:
                room = room_create(actor=staff, name=name)
            present = set(
                RoomMembership.objects.filter(room=room).values_list("user_id", flat=True)
            )
            RoomMembership.objects.bulk_create(
                [RoomMembership(room=room, user=user) for user in users if user.pk not in present]
            )

    def _write_tokens(self, path: Path, staff: User, users: list[User]) -> None:
        def entry(user: User) -> dict[str, Any]:
            issued = token_issue(user=user, device_name="loadtest")
            return {"id": user.pk, "email": user.email, "token": issued.plain_text}

        data = {"staff": entry(staff), "users": [entry(user) for user in users]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
        path.chmod(0o600)
        self.stdout.write(f"seed_loadtest: tokens written to {path}")
