"""Blocking calls of many sockets, run on a thread as one job.

A socket's connect path needs a few blocking calls (the token check and the subscribe
authorization in the database, the online mark and a replay read in Redis). Sent to a thread
one by one, each cost an executor hand-off, a future, a wake-up of the event loop and, for
the database, a hop to Channels' single database thread that every socket queued behind.
Under a connect storm that hand-off cost more than the calls. A :class:`Batcher` collects
the calls made while its previous job runs and hands them to its thread as the next job:
one hand-off and one wake-up per batch, and the batch grows with the load.

Each call keeps its own result or exception; a call whose caller went away (a closed socket)
is still run, and its result dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from django.db import close_old_connections

T = TypeVar("T")
R = TypeVar("R")

# One job's calls at most: a slow batch delays every socket in it.
MAX_BATCH = 200


class Batcher(Generic[T, R]):
    """``await batcher(item)``: the item's result from ``run_batch(items)``, which gets the
    items of one batch and answers a result (or an exception) per item, in their order.
    One batch at a time runs on ``executor``."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R | BaseException]],
        executor: ThreadPoolExecutor,
    ) -> None:
        self.run_batch = run_batch
        self.executor = executor
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._running:
            self._running = True
            # After this turn of the loop: the other sockets' calls of this turn join.
            loop.call_soon(self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if not batch:
            self._running = False
            return
        job = loop.run_in_executor(self.executor, self.run_batch, [item for item, _ in batch])
        job.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[T, asyncio.Future[R]]],
        job: asyncio.Future[Sequence[R | BaseException]],
    ) -> None:
        error = job.exception()
        results: Sequence[R | BaseException] = (
            [error] * len(batch) if error is not None else job.result()
        )
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        self._start(loop)


def run_each(calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
    """A batch of independent calls: each one's result or exception."""
    results: list[Any] = []
    for function, args in calls:
        try:
            results.append(function(*args))
        except Exception as exc:
            results.append(exc)
    return results


def run_each_with_database(calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
    """:func:`run_each` for calls that use the ORM, with Channels' connection hygiene
    (``database_sync_to_async``): stale or broken connections closed before and after."""
    close_old_connections()
    try:
        return run_each(calls)
    finally:
        close_old_connections()


class CallBatcher(Batcher[tuple[Callable[..., Any], tuple[Any, ...]], Any]):
    """Batches arbitrary blocking calls: ``await batcher.call(function, *args)``."""

    async def call(self, function: Callable[..., R], *args: Any) -> R:
        result: R = await self((function, args))
        return result
