"""Group commit: callers share a write, each gets its own outcome, nobody waits when idle."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from chassis.batching import GroupCommit


class Recorder:
    """A write that holds each batch until released, and records what it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.writing = asyncio.Event()

    async def write(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        self.writing.set()
        await self.release.wait()
        return [ValueError(i) if i < 0 else i * 10 for i in items]


async def test_an_idle_submit_is_written_at_once_alone() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.write)
    assert await asyncio.wait_for(commit.submit(1), timeout=5) == 10
    assert recorder.batches == [[1]]


async def test_submits_during_a_write_go_together_next_in_order_bounded() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder.write, max_batch=3)
    first = asyncio.create_task(commit.submit(0))
    await asyncio.wait_for(recorder.writing.wait(), timeout=5)
    rest = [asyncio.create_task(commit.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await asyncio.wait_for(asyncio.gather(first, *rest), timeout=5) == [
        0,
        10,
        20,
        30,
        40,
        50,
    ]
    assert recorder.batches == [[0], [1, 2, 3], [4, 5]]


async def test_each_caller_gets_its_own_failure() -> None:
    commit = GroupCommit(Recorder().write)
    ok, bad = await asyncio.gather(commit.submit(2), commit.submit(-1), return_exceptions=True)
    assert ok == 20
    assert isinstance(bad, ValueError) and bad.args == (-1,)


async def test_a_write_that_raises_fails_every_item_of_its_batch_and_not_the_next() -> None:
    calls = 0

    async def flaky(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("store unreachable")
        return list(items)

    commit = GroupCommit(flaky)
    with pytest.raises(ConnectionError):
        await commit.submit(1)
    assert await commit.submit(2) == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_write() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder.write)
    waiting = asyncio.create_task(commit.submit(7))
    await asyncio.wait_for(recorder.writing.wait(), timeout=5)
    waiting.cancel()
    recorder.release.set()
    await asyncio.wait_for(commit.close(), timeout=5)
    assert recorder.batches == [[7]]
