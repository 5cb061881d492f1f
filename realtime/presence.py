"""Who is online: users with at least one authenticated socket on any live server process.

Each hub records its authenticated sockets and refreshes them with its presence heartbeat;
entries of a dead process expire after ``PRESENCE_TTL``. With Redis the set is shared by every
process; in the embedded default (no Redis) it is the server process's own.
"""

from __future__ import annotations

from realtime.history import get_history


def online_user_ids() -> set[int]:
    """The ids of the users online now. Synchronous (one Redis round trip)."""
    return get_history().online_users()
