"""Jobs of the accounts area."""

from __future__ import annotations

import logging
from urllib.parse import quote

from celery import shared_task
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from backend.accounts.models import PersonalAccessToken, User

logger = logging.getLogger(__name__)


@shared_task(
    name="accounts.send_password_reset_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_password_reset_email(user_id: int) -> bool:
    """Mail a reset link. Running it twice sends a second, equally valid link: harmless."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    token = default_token_generator.make_token(user)
    context = {
        "user": user,
        "token": token,
        "reset_url": settings.PASSWORD_RESET_URL.format(
            email=quote(user.email, safe="@"), token=quote(token, safe="")
        ),
        "valid_minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
    }
    send_mail(
        subject="Reset your Triton password",
        message=render_to_string("accounts/password_reset_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    logger.info("password reset mail sent", extra={"user_id": user_id})
    return True


@shared_task(name="accounts.purge_expired_tokens")
def purge_expired_tokens() -> int:
    """Delete tokens that expired or were revoked more than a week ago."""
    cutoff = timezone.now() - timezone.timedelta(days=7)
    deleted, _ = PersonalAccessToken.objects.filter(
        Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff)
    ).delete()
    return deleted
