"""The message queue contract: Service Bus peek-lock semantics for every adapter."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from chassis.queue import (
    MAX_DELIVERY_EXCEEDED,
    MessageLockLost,
    MessageQueue,
    OutgoingMessage,
    ReceivedMessage,
)
from chassis.queue.sqlite import SqliteQueue
from tests.contract.conftest import CONTRACT_OPTIONS

Connect = Callable[[], Awaitable[MessageQueue]]


def message(**props: str) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=uuid.uuid4().hex,
        body=b'{"deliveryId": "x"}',
        properties={"operation": "delivery", **props},
    )


async def receive_one(q: MessageQueue, within: float = 15.0) -> ReceivedMessage:
    """Wait for a message with a generous bound (brokers redeliver at their own pace)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = await q.receive(max_messages=1, wait_seconds=1.0)
        if got:
            assert len(got) == 1
            return got[0]
    raise AssertionError(f"no message within {within} s")


async def test_a_sent_message_is_received_with_its_id_body_and_properties(
    queue_factory: Connect,
) -> None:
    q = await queue_factory()
    sent = message(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    await q.send(sent)
    got = await receive_one(q)
    assert (got.message_id, got.body, got.properties) == (
        sent.message_id,
        sent.body,
        sent.properties,
    )
    assert got.delivery_count == 1
    assert got.enqueued_at <= time.time() + 1
    await q.complete(got)


async def test_receive_on_an_empty_queue_returns_nothing_after_waiting(
    queue_factory: Connect,
) -> None:
    q = await queue_factory()
    assert await q.receive(max_messages=5, wait_seconds=0.3) == []


async def test_a_completed_message_is_not_delivered_again(queue_factory: Connect) -> None:
    q = await queue_factory()
    await q.send(message())
    await q.complete(await receive_one(q))
    assert await q.receive(wait_seconds=CONTRACT_OPTIONS.lock_seconds + 1.5) == []


async def test_an_abandoned_message_comes_back_with_a_higher_delivery_count(
    queue_factory: Connect,
) -> None:
    q = await queue_factory()
    sent = message()
    await q.send(sent)
    first = await receive_one(q)
    await q.abandon(first)
    second = await receive_one(q)
    assert second.message_id == sent.message_id
    assert second.delivery_count == 2
    await q.complete(second)


async def test_a_consumer_that_dies_without_settling_loses_the_message_to_another(
    queue_factory: Connect,
) -> None:
    dying = await queue_factory()
    sent = message()
    await dying.send(sent)
    first = await receive_one(dying)
    assert first.delivery_count == 1
    await dying.close()  # no settle: as if the process were killed

    survivor = await queue_factory()
    again = await receive_one(survivor)
    assert again.message_id == sent.message_id
    assert again.delivery_count == 2
    await survivor.complete(again)


async def test_completes_that_come_together_settle_only_their_own_messages(
    queue_factory: Connect,
) -> None:
    # An adapter that settles completes together (RabbitMQ's multiple ack) must not take in
    # an earlier message still in hand.
    dying = await queue_factory()
    sent = [message(n=str(n)) for n in range(4)]
    await dying.send_many(sent)
    in_hand: list[ReceivedMessage] = []
    deadline = time.monotonic() + 15
    while len(in_hand) < len(sent) and time.monotonic() < deadline:
        in_hand += await dying.receive(max_messages=len(sent) - len(in_hand), wait_seconds=1.0)
    assert [m.message_id for m in in_hand] == [m.message_id for m in sent]
    held = in_hand.pop(1)
    await asyncio.gather(*(dying.complete(m) for m in reversed(in_hand)))
    await dying.close()  # the held one unsettled: as if the process were killed

    survivor = await queue_factory()
    again = await receive_one(survivor)
    assert (again.message_id, again.delivery_count) == (held.message_id, 2)
    await survivor.complete(again)
    assert await survivor.receive(max_messages=4, wait_seconds=1.5) == []


GIVE_UPS = ["abandon", "abandon-with-delay", "consumer-crash"]


@pytest.mark.parametrize("give_up", GIVE_UPS)
async def test_a_message_given_up_on_max_delivery_count_times_is_dead_lettered_for_good(
    queue_factory: Connect, give_up: str
) -> None:
    # Every way a consumer gives a message back counts toward the limit: on RabbitMQ 4.3 a
    # basic.nack no longer does, and a poison message would go round forever.
    limit = CONTRACT_OPTIONS.max_delivery_count
    sender = await queue_factory()
    sent = message()
    await sender.send(sent)
    seen: list[ReceivedMessage] = []
    while len(seen) < 3 * limit:  # bounded: a queue that does not count them never stops
        consumer = await queue_factory() if give_up == "consumer-crash" else sender
        if len(seen) < limit:
            seen.append(await receive_one(consumer))
        elif got := await consumer.receive(wait_seconds=3.0):
            seen.extend(got)
        else:
            break
        if give_up == "abandon":
            await consumer.abandon(seen[-1])
        elif give_up == "abandon-with-delay":
            await consumer.abandon(seen[-1], delay_seconds=0.3)
        else:
            await consumer.close()  # no settle: as if the process were killed
    assert [m.delivery_count for m in seen] == list(range(1, limit + 1))
    assert [(m.message_id, m.properties) for m in seen] == [
        (sent.message_id, sent.properties)
    ] * limit
    dead = await _wait_for_dead_letter(await queue_factory(), sent.message_id)
    assert (dead.reason, dead.body, dead.properties) == (
        MAX_DELIVERY_EXCEEDED,
        sent.body,
        sent.properties,
    )


async def test_an_explicit_dead_letter_keeps_reason_and_description(
    queue_factory: Connect,
) -> None:
    q = await queue_factory()
    sent = message()
    await q.send(sent)
    got = await receive_one(q)
    await q.dead_letter(got, reason="UndecodableBody", description="Expecting value: line 1")
    dead = await _wait_for_dead_letter(q, sent.message_id)
    assert (dead.reason, dead.description) == ("UndecodableBody", "Expecting value: line 1")
    assert dead.properties["operation"] == "delivery"
    assert await q.receive(wait_seconds=1.0) == []


async def test_a_message_is_settled_once(queue_factory: Connect) -> None:
    q = await queue_factory()
    await q.send(message())
    got = await receive_one(q)
    await q.complete(got)
    with pytest.raises(MessageLockLost):
        await q.complete(got)


async def test_a_replayed_dead_letter_is_delivered_again(queue_factory: Connect) -> None:
    q = await queue_factory()
    sent = message()
    await q.send(sent)
    await q.dead_letter(await receive_one(q), reason="Test", description="replay me")
    await _wait_for_dead_letter(q, sent.message_id)
    assert await q.replay_dead_letter(sent.message_id) is True
    again = await receive_one(q)
    assert again.message_id == sent.message_id and again.body == sent.body
    await q.complete(again)
    assert all(d.message_id != sent.message_id for d in await q.dead_letters())
    assert await q.replay_dead_letter(sent.message_id) is False


async def test_messages_are_shared_between_competing_consumers(queue_factory: Connect) -> None:
    a, b = await queue_factory(), await queue_factory()
    sent = [message() for _ in range(6)]
    for m in sent:
        await a.send(m)
    seen: set[str] = set()
    deadline = time.monotonic() + 20
    while len(seen) < len(sent) and time.monotonic() < deadline:
        for q in (a, b):
            for got in await q.receive(max_messages=2, wait_seconds=0.2):
                assert got.message_id not in seen, "a locked message went to two consumers"
                seen.add(got.message_id)
                await q.complete(got)
    assert seen == {m.message_id for m in sent}


async def test_a_batch_sent_at_once_is_received_whole_and_in_order(
    queue_factory: Connect,
) -> None:
    q = await queue_factory()
    sent = [message(n=str(n)) for n in range(20)]
    await q.send_many(sent)
    await q.send_many([])
    received = []
    deadline = time.monotonic() + 20
    while len(received) < len(sent) and time.monotonic() < deadline:
        for got in await q.receive(max_messages=10, wait_seconds=1.0):
            received.append(got)
            await q.complete(got)
    assert [(m.message_id, m.body, m.properties) for m in received] == [
        (m.message_id, m.body, m.properties) for m in sent
    ]


async def _wait_for_dead_letter(q: MessageQueue, message_id: str, within: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for dead in await q.dead_letters():
            if dead.message_id == message_id:
                return dead
        await _pause()
    raise AssertionError(f"{message_id} was not dead-lettered within {within} s")


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.2)  # polling interval while waiting on a condition, bounded above


# The SQLite queue only: its lookups stay indexed as the file fills.


@contextlib.asynccontextmanager
async def _sqlite_queue(path: str) -> AsyncIterator[SqliteQueue]:
    q = await SqliteQueue.connect(f"sqlite:///{path}?queue=plans", CONTRACT_OPTIONS)
    try:
        yield q
    finally:  # also when the test fails: an open connection's thread would hold up the exit
        await q.close()


def _unindexed_steps(db: sqlite3.Connection, statements: list[str]) -> list[str]:
    """The query-plan steps of `statements` that read more than a lookup needs: a scan of a
    table, a sort in a temporary b-tree, or a search bounded by the queue's name alone (all
    of one queue's rows)."""
    bad = []
    for statement in statements:
        for *_, step in db.execute("EXPLAIN QUERY PLAN " + statement):
            if step.startswith("SCAN") or "TEMP B-TREE" in step or step.endswith("(queue=?)"):
                bad.append(f"{step}  <-  {statement}")
    return bad


async def test_sqlite_send_and_receive_are_indexed_lookups(tmp_path: Path) -> None:
    statements: list[str] = []
    async with _sqlite_queue(f"{tmp_path}/q.db") as q:
        for _ in range(3):
            await q.send(message())
        await q._db.set_trace_callback(statements.append)
        await q.send(message())
        got = await q.receive(max_messages=2, wait_seconds=0)
        await q.abandon(got[0])
        await q.complete(got[1])
        await q._db.set_trace_callback(None)
    looked_up = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "DELETE"))]
    assert len(looked_up) >= 3  # the expired ids, the cheap look, the pick (and the settling)
    with contextlib.closing(sqlite3.connect(f"{tmp_path}/q.db")) as db:
        assert _unindexed_steps(db, looked_up) == []


async def test_a_sqlite_queue_file_from_before_the_indexes_opens_and_gets_them(
    tmp_path: Path,
) -> None:
    kept = message()
    async with _sqlite_queue(f"{tmp_path}/old.db") as q:
        await q.send(kept)
    with contextlib.closing(sqlite3.connect(f"{tmp_path}/old.db")) as db:  # as an old file
        db.execute("DROP INDEX ix_sent_ids_age")
        db.commit()
    async with _sqlite_queue(f"{tmp_path}/old.db") as q:
        assert (await receive_one(q)).message_id == kept.message_id
    with contextlib.closing(sqlite3.connect(f"{tmp_path}/old.db")) as db:
        indexes = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
    assert {"ix_sent_ids_age", "ix_messages_ready"} <= indexes


async def test_sqlite_delivers_in_the_order_messages_became_ready(tmp_path: Path) -> None:
    sent = [message() for _ in range(4)]
    async with _sqlite_queue(f"{tmp_path}/q.db") as q:
        for m in sent:
            await q.send(m)
        first = await q.receive(max_messages=1, wait_seconds=0)
        await q.abandon(first[0])  # ready again now: behind the three ready before it
        got = await q.receive(max_messages=4, wait_seconds=0)
    assert [m.message_id for m in got] == [m.message_id for m in [*sent[1:], sent[0]]]
