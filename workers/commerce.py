"""Jobs of the commerce area: invoice PDFs and the coalesced dashboard refresh."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from backend.commerce import dashboard, services

logger = logging.getLogger(__name__)

# Worth another try: wkhtmltopdf or storage I/O, a database or cache hiccup, a slow render.
TRANSIENT_ERRORS = (OSError, DatabaseError, SoftTimeLimitExceeded)
RENDER_MAX_RETRIES = 4


@shared_task(
    name="commerce.render_invoice",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=RENDER_MAX_RETRIES,
    soft_time_limit=settings.INVOICE_RENDER_TIME_LIMIT,
    time_limit=settings.INVOICE_RENDER_TIME_LIMIT + 10,
)
def render_invoice(self: Task, invoice_id: int) -> str | None:
    """Render one invoice. Safe to run any number of times (see services.invoice_render);
    transient errors retry with backoff, and the last failure marks the invoice failed
    rather than leaving it pending."""
    try:
        return services.invoice_render(
            invoice_id=invoice_id, pdf_timeout=settings.INVOICE_RENDER_TIME_LIMIT * 0.8
        )
    except TRANSIENT_ERRORS as exc:
        attempt = self.request.retries + 1
        if attempt > RENDER_MAX_RETRIES:
            services.invoice_fail(
                invoice_id=invoice_id, reason=f"gave up after {attempt} attempts: {exc}"
            )
            return "failed"
        logger.warning("invoice render failed, retrying", extra={"invoice_id": invoice_id})
        raise self.retry(exc=exc, countdown=min(2**attempt, 20)) from exc


@shared_task(name="commerce.refresh_dashboard", acks_late=True, ignore_result=True)
def refresh_dashboard() -> bool:
    """Recompute the dashboard figures; publishes ``dashboard.updated`` when they changed."""
    return dashboard.refresh()
