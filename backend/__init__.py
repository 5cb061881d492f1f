"""Triton's Django project: settings, URLs, ASGI entry point and the domain apps."""

# PyMySQL stands in for mysqlclient, so DATABASE_URL=mysql://... works without a C build.
import pymysql

pymysql.install_as_MySQLdb()

# The Celery app is configured in every Django process, so backend.core.jobs can queue jobs
# by name without domain code importing workers/.
from workers.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
