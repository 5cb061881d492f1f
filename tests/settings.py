"""Test settings: the production settings pointed at the real local MariaDB and Redis.

Override with TEST_DATABASE_URL / TEST_REDIS_URL. Redis database 15 is reserved for tests;
each run removes its own keys (by prefix) when it ends.
"""

import os

# Several test runs may share this machine's MariaDB and Redis (developers, CI, e2e server
# processes): each run gets its own test database, key prefixes and Celery queue.
TEST_RUN_ID = os.environ.setdefault("TEST_RUN_ID", f"r{os.getpid()}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"test-{TEST_RUN_ID}")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"test-{TEST_RUN_ID}")
os.environ.setdefault("REALTIME_KEY_PREFIX", f"test-{TEST_RUN_ID}:rt")
os.environ.setdefault("CELERY_QUEUE", f"triton-test-{TEST_RUN_ID}")

os.environ["DATABASE_URL"] = os.environ.get(
    "TEST_DATABASE_URL", "mysql://root@127.0.0.1:3306/triton"
)
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Realtime on the test Redis too (tests that shard start Redis instances of their own).
os.environ.pop("REALTIME_REDIS_URLS", None)
os.environ.setdefault("CELERY_BROKER_URL", os.environ["REDIS_URL"])
os.environ.setdefault("LOG_FORMAT", "text")
# No collectstatic before the suite: unhashed names, served (where a server serves them) from
# the apps' folders. tests/test_security_static.py runs collectstatic itself.
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("STATIC_USE_FINDERS", "true")
os.environ.setdefault("SERVE_STATIC", "false")
# Production settings refuse to start without one; server processes the suite starts inherit it.
os.environ.setdefault("DJANGO_SECRET_KEY", f"test-only-secret-key-{TEST_RUN_ID}-not-for-production")

from backend.settings import *  # noqa: E402,F403

DATABASES["default"]["TEST"]["NAME"] = f"test_triton_{TEST_RUN_ID}"  # noqa: F405

# Hashing cost is not what the tests measure.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Jobs run on real workers where a test starts one; elsewhere they go to the broker.
CELERY_TASK_ALWAYS_EAGER = False
# Broadcasts (the health check's worker ping) reach only this run's workers.
CELERY_CONTROL_EXCHANGE = f"triton-test-{TEST_RUN_ID}"
SERVE_STATIC = False
TRITON_VAR_DIR = "/tmp/triton-tests"
MEDIA_ROOT = "/tmp/triton-tests/media"
