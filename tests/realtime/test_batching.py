"""realtime.batching: the connect path's blocking calls go to a thread in batches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from realtime.batching import Batcher, CallBatcher, run_each


@pytest.fixture
def thread() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-batching")
    yield executor
    executor.shutdown(wait=True)


async def test_calls_of_one_turn_run_as_one_job_each_with_its_own_result(
    thread: ThreadPoolExecutor,
) -> None:
    jobs: list[list[int]] = []

    def double_all(items: list[int]) -> list[int | BaseException]:
        jobs.append(items)
        return [ValueError(f"odd {n}") if n % 2 else n * 2 for n in items]

    batcher = Batcher[int, int](double_all, thread)
    results = await asyncio.gather(*(batcher(n) for n in range(6)), return_exceptions=True)

    assert results[0::2] == [0, 4, 8]
    assert [str(error) for error in results[1::2]] == ["odd 1", "odd 3", "odd 5"]
    assert jobs == [[0, 1, 2, 3, 4, 5]]


async def test_calls_made_while_a_job_runs_form_the_next_job(thread: ThreadPoolExecutor) -> None:
    started, release = threading.Event(), threading.Event()
    jobs: list[list[int]] = []

    def slow(items: list[int]) -> list[int | BaseException]:
        jobs.append(items)
        started.set()
        release.wait(10)
        return list(items)

    batcher = Batcher[int, int](slow, thread)
    first = asyncio.ensure_future(batcher(1))
    await asyncio.to_thread(started.wait, 10)
    later = [asyncio.ensure_future(batcher(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0.05)
    release.set()

    assert await first == 1
    assert await asyncio.gather(*later) == [2, 3, 4]
    assert jobs == [[1], [2, 3, 4]]


async def test_a_failing_job_fails_each_of_its_calls_and_the_next_job_still_runs(
    thread: ThreadPoolExecutor,
) -> None:
    calls = 0

    def flaky(items: list[str]) -> list[str | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("store away")
        return [item.upper() for item in items]

    batcher = Batcher[str, str](flaky, thread)
    failed = await asyncio.gather(batcher("a"), batcher("b"), return_exceptions=True)
    assert [type(error) for error in failed] == [ConnectionError, ConnectionError]
    assert await batcher("c") == "C"


async def test_a_caller_that_went_away_does_not_disturb_the_others(
    thread: ThreadPoolExecutor,
) -> None:
    release = threading.Event()

    def wait_then_echo(items: list[int]) -> list[int | BaseException]:
        release.wait(10)
        return list(items)

    batcher = Batcher[int, int](wait_then_echo, thread)
    gone = asyncio.ensure_future(batcher(1))
    kept = asyncio.ensure_future(batcher(2))
    await asyncio.sleep(0.01)
    gone.cancel()
    release.set()
    assert await kept == 2
    assert gone.cancelled()


async def test_call_batcher_runs_each_call_with_its_arguments(thread: ThreadPoolExecutor) -> None:
    batcher = CallBatcher(run_each, thread)

    def divide(a: int, b: int) -> float:
        return a / b

    ok, error = await asyncio.gather(
        batcher.call(divide, 6, 3), batcher.call(divide, 1, 0), return_exceptions=True
    )
    assert ok == 2
    assert isinstance(error, ZeroDivisionError)
