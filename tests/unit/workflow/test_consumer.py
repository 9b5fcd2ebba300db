"""Workflow's consumer on the embedded queue: bounded concurrency, liveness, shutdown."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from chassis.queue import OutgoingMessage, QueueOptions, ReceivedMessage, connect_message_queue
from workflow.consumer import Consumer
from workflow.service import Complete, Outcome, RetryLater


async def _queue(tmp_path: Path, lock: float = 30.0):  # type: ignore[no-untyped-def]
    return await connect_message_queue(
        f"sqlite:///{tmp_path}/q.db?queue=t", QueueOptions(lock_seconds=lock, max_delivery_count=5)
    )


async def test_no_more_than_the_configured_number_of_messages_are_in_flight(tmp_path: Path) -> None:
    queue = await _queue(tmp_path)
    for i in range(12):
        await queue.send(OutgoingMessage(f"m{i}", b"{}"))
    in_flight, most, done = 0, 0, asyncio.Event()
    finished: list[str] = []

    async def handler(message: ReceivedMessage) -> Outcome:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        finished.append(message.message_id)
        if len(finished) == 12:
            done.set()
        return Complete()

    consumer = Consumer(queue, handler, concurrency=3, lock_seconds=30)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(done.wait(), 20)
    await consumer.stop(5)
    running.cancel()
    assert most == 3
    assert sorted(finished) == sorted(f"m{i}" for i in range(12))
    assert await queue.receive(wait_seconds=0.2) == []
    await queue.close()


async def test_a_consumer_stuck_on_its_messages_stops_making_progress(tmp_path: Path) -> None:
    queue = await _queue(tmp_path)
    await queue.send(OutgoingMessage("stuck", b"{}"))
    started = asyncio.Event()

    async def handler(message: ReceivedMessage) -> Outcome:
        started.set()
        await asyncio.Event().wait()  # never returns: a wedged downstream call
        return Complete()

    consumer = Consumer(queue, handler, concurrency=1, lock_seconds=30)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.6)
    assert consumer.stalled_for() >= 0.5  # liveness compares this with its threshold
    await consumer.stop(0.1)
    running.cancel()
    await queue.close()


async def test_on_shutdown_unfinished_messages_are_abandoned_for_another_consumer(
    tmp_path: Path,
) -> None:
    queue = await _queue(tmp_path)
    await queue.send(OutgoingMessage("unfinished", b"{}"))
    started = asyncio.Event()

    async def slow(message: ReceivedMessage) -> Outcome:
        started.set()
        await asyncio.sleep(60)
        return Complete()

    consumer = Consumer(queue, slow, concurrency=1, lock_seconds=30)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(started.wait(), 10)
    began = time.monotonic()
    await consumer.stop(0.2)
    running.cancel()
    assert time.monotonic() - began < 5
    # Abandoned, not left locked for 30 s: it is available again at once.
    again = await queue.receive(wait_seconds=2)
    assert [m.message_id for m in again] == ["unfinished"]
    assert again[0].delivery_count == 2
    await queue.close()


def _gate_receive(queue):  # type: ignore[no-untyped-def]
    """Make the queue's receive wait until the test lets it go; returns (receiving, let_go)."""
    receiving, let_go = asyncio.Event(), asyncio.Event()
    real_receive = queue.receive

    async def gated_receive(**kwargs: float) -> list[ReceivedMessage]:
        receiving.set()
        await let_go.wait()
        return list(await real_receive(**kwargs))

    queue.receive = gated_receive
    return receiving, let_go


async def test_stop_waits_for_what_a_receive_under_way_returns(tmp_path: Path) -> None:
    # The caller closes the downstream clients once stop returns: a message that a receive
    # under way at the stop hands over must be finished (or abandoned) before that.
    queue = await _queue(tmp_path)
    await queue.send(OutgoingMessage("late", b"{}"))
    receiving, let_go = _gate_receive(queue)
    handled: list[str] = []

    async def handler(message: ReceivedMessage) -> Outcome:
        handled.append(message.message_id)
        return Complete()

    consumer = Consumer(queue, handler, concurrency=2, lock_seconds=30)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(receiving.wait(), 10)
    stopping = asyncio.create_task(consumer.stop(5))
    await asyncio.sleep(0)  # one turn of the loop: stop has begun, the receive is still out
    let_go.set()
    await asyncio.wait_for(stopping, 10)
    assert handled == ["late"]
    assert running.done()
    del queue.receive  # the real one again
    assert await queue.receive(wait_seconds=0.2) == []  # completed, not left locked
    await queue.close()


async def test_a_receive_that_never_returns_does_not_hold_up_the_stop(tmp_path: Path) -> None:
    queue = await _queue(tmp_path)
    receiving, _ = _gate_receive(queue)

    async def handler(message: ReceivedMessage) -> Outcome:
        return Complete()

    consumer = Consumer(queue, handler, concurrency=2, lock_seconds=30)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(receiving.wait(), 10)
    began = time.monotonic()
    await asyncio.wait_for(consumer.stop(0.2), 10)
    assert time.monotonic() - began < 5
    assert running.done()  # the run loop ended: it can start nothing after the stop
    await queue.close()


async def test_a_downstream_outage_is_waited_out_holding_the_message(tmp_path: Path) -> None:
    # max_delivery_count=5 above: five abandons would dead-letter it; held, it is delivered once.
    queue = await _queue(tmp_path)
    await queue.send(OutgoingMessage("held", b"{}"))
    calls: list[int] = []
    done = asyncio.Event()

    async def handler(message: ReceivedMessage) -> Outcome:
        calls.append(message.delivery_count)
        if len(calls) < 6:
            return RetryLater("package unavailable", 0.01)
        done.set()
        return Complete()

    consumer = Consumer(queue, handler, concurrency=1, lock_seconds=30, hold_seconds=10)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(done.wait(), 20)
    await consumer.stop(5)
    running.cancel()
    assert calls == [1] * 6
    assert await queue.receive(wait_seconds=0.2) == []
    assert await queue.dead_letters() == []
    await queue.close()


async def test_a_message_waiting_for_another_is_handed_back_at_once(tmp_path: Path) -> None:
    queue = await _queue(tmp_path)
    await queue.send(OutgoingMessage("early", b"{}"))
    calls: list[int] = []
    second = asyncio.Event()

    async def handler(message: ReceivedMessage) -> Outcome:
        calls.append(message.delivery_count)
        if len(calls) == 2:
            second.set()
            return Complete()
        return RetryLater("delivery not scheduled yet", 0.01, hold=False)

    consumer = Consumer(queue, handler, concurrency=1, lock_seconds=30, hold_seconds=10)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(second.wait(), 20)
    await consumer.stop(5)
    running.cancel()
    assert calls == [1, 2]  # back through the queue: a second delivery
    await queue.close()


async def test_holding_ends_after_the_hold_time_and_the_queue_counts_a_delivery(
    tmp_path: Path,
) -> None:
    queue = await _queue(tmp_path)
    await queue.send(OutgoingMessage("outage", b"{}"))
    calls: list[tuple[int, float]] = []
    redelivered = asyncio.Event()

    async def handler(message: ReceivedMessage) -> Outcome:
        calls.append((message.delivery_count, time.monotonic()))
        if message.delivery_count == 2:
            redelivered.set()
            return Complete()
        return RetryLater("package unavailable", 0.1)

    consumer = Consumer(queue, handler, concurrency=1, lock_seconds=30, hold_seconds=0.5)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(redelivered.wait(), 20)
    await consumer.stop(5)
    running.cancel()
    first = [at for count, at in calls if count == 1]
    # Pauses of 0.1, 0.2 fit in 0.5 s; 0.4 more would not: three tries, then handed back.
    assert len(first) == 3
    assert first[-1] - first[0] >= 0.3
    await queue.close()
