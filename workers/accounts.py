"""Jobs of the accounts area: they take ids and call services."""

from __future__ import annotations

from celery import shared_task

from backend.accounts import services

BEAT_SCHEDULE = {
    "accounts-purge-expired-tokens": {
        "task": "accounts.purge_expired_tokens",
        "schedule": 3600.0,
    },
}


@shared_task(
    name="accounts.send_password_reset_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_password_reset_email(*, user_id: int) -> bool:
    """Mail a reset link. Running it twice sends a second, equally valid link: harmless."""
    return services.password_reset_mail_send(user_id=user_id)


@shared_task(name="accounts.purge_expired_tokens")
def purge_expired_tokens() -> int:
    return services.expired_tokens_purge()
