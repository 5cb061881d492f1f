"""A fresh server for each content e2e test that grants object rights in the server.

Why: between transactional tests the database is flushed (DELETE), and the post-flush seeding
recreates ``django_content_type`` rows under new ids. A long-lived server process keeps
Django's ContentType cache from before, so django-guardian (which looks permission rows up by
cached content type id) would grant or check against ids that no longer exist. A production
database never renumbers its content types; only this harness does.
"""

from __future__ import annotations

from tests.e2e.conftest import Server, ServerPool


def fresh_server(servers: ServerPool, name: str = "content", **env: str) -> Server:
    """A newly started server (the previous one of that name is stopped)."""
    (server,) = servers.start_fresh({name: env})
    return server
