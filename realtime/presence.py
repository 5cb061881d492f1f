"""Who is online: users with at least one live authenticated socket on any server process.

The consumer reports every authenticated socket here once its token is accepted (before it
answers ``auth.ok``: :func:`socket_opened`) and when it closes (:func:`socket_closed`); each
hub refreshes its sockets with its presence heartbeat, and the entries of a dead process
expire after ``PRESENCE_TTL``. With Redis the set is shared by every process (servers,
workers, shells); in the embedded default (no Redis) it is the server process's own memory,
which is also where that default's jobs run.

:data:`online_changed` is sent after opens and closes (once per user of a batch the hub
records together), so domain apps can follow the count without the realtime core knowing
them. The count may not have changed (another socket of the same user was open, or stays
open): receivers recompute what depends on it, cheaply and without raising. A dead process's
sockets leave the set when they expire, without a signal.
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

from realtime.history import get_history

logger = logging.getLogger(__name__)

# Sent with ``user_id`` and ``online`` (True after an open, False after a close), on the
# thread that recorded the change (never the event loop); receivers must not block for long.
online_changed = Signal()


def online_user_ids() -> set[int]:
    """The ids of the users online now. Synchronous (one Redis round trip)."""
    return get_history().online_users()


def socket_opened(user_id: int, connection_id: str) -> None:
    """Record an authenticated socket as online. Synchronous: call it off the event loop."""
    get_history().online_add(user_id, connection_id)
    _announce(user_id, online=True)


def socket_closed(user_id: int, connection_id: str) -> None:
    """Forget an authenticated socket. Synchronous: call it off the event loop."""
    get_history().online_remove(user_id, connection_id)
    _announce(user_id, online=False)


def _announce(user_id: int, *, online: bool) -> None:
    for receiver, error in online_changed.send_robust(sender=None, user_id=user_id, online=online):
        if isinstance(error, Exception):
            logger.warning("online_changed receiver %r failed", receiver, exc_info=error)
