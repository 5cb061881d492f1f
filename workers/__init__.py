"""Celery: the app and the job modules. Jobs take ids, call services, and are idempotent."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
