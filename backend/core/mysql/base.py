"""Django's MySQL/MariaDB backend, except for what it does when a kept connection's health
check (``CONN_HEALTH_CHECKS``) times out.

Django pings a reused connection before its first query; when the ping fails it connects
anew. A ping that *timed out* means the server hangs (stopped, overloaded, a half-dead host),
not that the connection went stale: a new connection would wait ``DB_READ_TIMEOUT`` once more
for the server's greeting, so a request waited twice the configured bound before its 503.
Here such a ping fails the query at once (OperationalError 2013, answered 503 by the API);
the next query connects anew. Other ping failures (a reset, a server that restarted) still
reconnect silently, as in Django.
"""

from __future__ import annotations

from django.db.backends.mysql import base


def _timed_out(exc: BaseException) -> bool:
    return "timed out" in str(exc)


class DatabaseWrapper(base.DatabaseWrapper):
    # Set by Django's connect(); declared for the type checker.
    health_check_done: bool

    def close_if_health_check_failed(self) -> None:
        enabled = self.settings_dict["CONN_HEALTH_CHECKS"]
        if self.connection is None or not enabled or self.health_check_done:
            return
        try:
            self.connection.ping()
        # Any failure, as in Django's is_usable (PyMySQL's classes may be loaded twice, as
        # pymysql and as MySQLdb, so the module's own Error is not a safe filter).
        except Exception as exc:
            self.close()
            if _timed_out(exc):
                with self.wrap_database_errors:
                    raise
        self.health_check_done = True
