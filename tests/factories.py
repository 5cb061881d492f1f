"""factory_boy factories shared by the suite."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group

from backend.accounts.models import User
from backend.accounts.tokens import token_issue
from backend.messaging.models import Room, RoomMembership

DEFAULT_PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if not create:
            return
        names = extracted if extracted is not None else ["Customer"]
        self.groups.set(Group.objects.filter(name__in=names))
        self.save()


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"room-{n}")

    @factory.post_generation
    def members(self, create: bool, extracted: list[User] | None, **kwargs: object) -> None:
        for user in extracted or []:
            RoomMembership.objects.create(room=self, user=user)


def bearer_for(user: User, device_name: str = "tests") -> str:
    return token_issue(user=user, device_name=device_name).plain_text


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "todos.Task"

    user = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"task {n}")


class MessageFactory(factory.django.DjangoModelFactory):
    """A room message by default; pass ``room=None, recipient=<user>`` for a direct one."""

    class Meta:
        model = "messaging.Message"

    sender = factory.SubFactory(UserFactory)
    room = factory.SubFactory(RoomFactory)
    recipient = None
    body = factory.Sequence(lambda n: f"message {n}")


class MailFactory(factory.django.DjangoModelFactory):
    """A received copy in its owner's inbox, unread."""

    class Meta:
        model = "messaging.Mail"

    user = factory.SubFactory(UserFactory)
    folder = "inbox"
    home_folder = factory.LazyAttribute(lambda mail: mail.folder)
    subject = factory.Sequence(lambda n: f"subject {n}")
    body = "<p>hello</p>"
    read_flag = False
    sender = factory.SubFactory(UserFactory)
    recipient_ids = factory.LazyAttribute(lambda mail: [mail.user.pk])


# --- commerce ---------------------------------------------------------------------------------
class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "commerce.Product"

    name = factory.Sequence(lambda n: f"Product {n}")
    description = factory.Sequence(lambda n: f"Description of product {n}")
    price = factory.Sequence(lambda n: f"{10 + n % 90}.50")
    stock = 10


class InvoiceTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "commerce.InvoiceTemplate"

    name = factory.Sequence(lambda n: f"Template {n}")
    html_template = "<h1>Invoice {{ invoice.id }} for order {{ order.id }}</h1>"


def place_order(user: User, *lines: tuple[object, int]) -> object:
    """An order placed through the service (stock taken, the owner's object right granted).
    ``lines``: (product, quantity) pairs."""
    from backend.commerce.services import order_create

    return order_create(actor=user, items=[(product.pk, qty) for product, qty in lines])


# --- content --------------------------------------------------------------------------------
from backend.content.models import File, Post  # noqa: E402
from backend.content.permissions import POST_AUTHOR_RIGHTS  # noqa: E402
from backend.core.permissions import grant_perm  # noqa: E402

# A minimal valid PDF head: sniffed as application/pdf.
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class PostFactory(factory.django.DjangoModelFactory):
    """A post with its author's object rights, as post_create leaves it (no event)."""

    class Meta:
        model = Post
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, roles=["Editor"])
    title = factory.Sequence(lambda n: f"Post {n}")
    body_html = "<p>Hello</p>"
    published_at = None

    @factory.post_generation
    def author_rights(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            for right in POST_AUTHOR_RIGHTS:
                grant_perm(self.user, right, self)


def make_file(owner: User, content: bytes = PDF_BYTES, filename: str = "report.pdf") -> File:
    """An uploaded file, through the real upload service (sniffing, storage, owner rights)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.content.services import file_upload

    return file_upload(actor=owner, uploaded=SimpleUploadedFile(filename, content))
