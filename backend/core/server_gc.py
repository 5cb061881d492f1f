"""The garbage collector of an ASGI server process (called once by backend/asgi.py).

Every socket keeps about a hundred container objects alive (consumer, protocol, buffers,
tasks); with CPython's default thresholds (700, 10, 10) a server that connects thousands of
them ran a full collection every ~70,000 net allocations, each scanning every tracked object
of the process: Django's own (~135,000 after start) and all the sockets'. Measured on a
reconnect storm of 5,000 sockets: 20-odd full collections of 130-950 ms, a third of the
server's CPU (docs/benchmarks.md, "Connect path").

* ``gc.freeze()`` after start: what importing Django, the apps and the URL conf created
  lives as long as the process; full collections no longer scan it.
* Higher thresholds: a young collection per 10,000 net allocations instead of 700, so a full
  one per million instead of 70,000. Memory freed by reference counting (nearly all of it) is
  not affected; only garbage in reference cycles waits longer.
"""

from __future__ import annotations

import gc

SERVER_GC_THRESHOLDS = (10_000, 10, 10)


def tune_for_server() -> None:
    gc.collect()  # start-up garbage goes now, not frozen for good
    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLDS)
