"""Chat rooms, their members and messages; internal mail.

The realtime core uses the membership model to authorize ``room.{id}`` topics and to track
presence. A chat message goes either to a room or directly to one user; mail is stored as one
copy per mailbox (the sender's in ``sent``, each recipient's in ``inbox``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Room(models.Model):
    name = models.CharField(max_length=150)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="RoomMembership", related_name="rooms"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name


class RoomMembership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_memberships"
    )
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("room", "user"), name="unique_room_member"),)

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}"


MESSAGE_BODY_MAX_LENGTH = 4000
CLIENT_MSG_ID_MAX_LENGTH = 64


class Message(models.Model):
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sent_messages"
    )
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="received_messages",
    )
    body = models.TextField()
    # The sender's idempotency key: a retried send finds the message it already stored.
    # NULL, not "": sends without a key must not collide with each other.
    client_msg_id = models.CharField(  # noqa: DJ001
        max_length=CLIENT_MSG_ID_MAX_LENGTH, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)
        constraints = (
            # NULL keys never collide: sends without a client_msg_id are not deduplicated.
            models.UniqueConstraint(
                fields=("sender", "client_msg_id"), name="unique_message_client_msg_id"
            ),
            models.CheckConstraint(
                condition=models.Q(room__isnull=False, recipient__isnull=True)
                | models.Q(room__isnull=True, recipient__isnull=False),
                name="message_room_xor_recipient",
            ),
        )
        indexes = (
            # Direct conversations are read from both ends, newest first.
            models.Index(fields=("sender", "recipient", "id"), name="message_direct_pair"),
        )

    def __str__(self) -> str:
        return f"message {self.pk} from {self.sender_id}"


class MailFolder(models.TextChoices):
    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    ARCHIVE = "archive"
    TRASH = "trash"


MAIL_SUBJECT_MAX_LENGTH = 200
MAIL_BODY_MAX_LENGTH = 100_000


class Mail(models.Model):
    """One mailbox's copy of a mail; ``user`` owns the copy."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    folder = models.CharField(max_length=10, choices=MailFolder.choices)
    # Where the copy was filed first (inbox, sent or drafts): the only one of those three
    # folders it may be moved back to.
    home_folder = models.CharField(max_length=10, choices=MailFolder.choices)
    subject = models.CharField(max_length=MAIL_SUBJECT_MAX_LENGTH)
    body = models.TextField()
    read_flag = models.BooleanField(default=False)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    recipient_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-id",)
        indexes = (
            models.Index(fields=("user", "folder", "id"), name="mail_user_folder"),
            models.Index(fields=("user", "read_flag", "folder"), name="mail_user_unread"),
        )

    def __str__(self) -> str:
        return self.subject
