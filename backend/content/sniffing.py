"""What an upload really is, from its first bytes (never from the client's name or header)."""

from __future__ import annotations

from typing import IO

import filetype

# Enough for every signature filetype knows (zip-based office formats look further in).
HEAD_BYTES = 8192
_TEXT_CONTROL_OK = frozenset(b"\t\n\r\f")


def _looks_like_text(head: bytes, *, complete: bool) -> bool:
    """UTF-8 without NUL or other control characters (a cut multi-byte character at the end of
    a partial head is fine)."""
    if any(byte < 0x20 and byte not in _TEXT_CONTROL_OK for byte in head) or b"\x7f" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            not complete and exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
        )
    return True


def sniff_mime_type(fileobj: IO[bytes]) -> str | None:
    """The MIME type the content shows (``text/plain`` for UTF-8 text), or None when unknown.
    Reads the head and rewinds."""
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    complete = len(head) < HEAD_BYTES
    fileobj.seek(0)
    if not head:
        return None
    kind = filetype.guess(head)
    if kind is not None:
        return str(kind.mime)
    if _looks_like_text(head, complete=complete):
        return "text/plain"
    return None
