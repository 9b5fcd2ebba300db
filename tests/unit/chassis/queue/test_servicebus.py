"""The Service Bus adapter: its pure parts (URL, credential, replayed ids), and how it
drives the SDK's receiver, against fakes that stand in for the SDK's objects at the methods
and attributes the adapter uses (no Service Bus can be reached here).

What the fakes cannot show, the contract suite does against a real namespace or emulator
(set TEST_SERVICEBUS_URL): that the service honours prefetch 0, settles during a receive,
and extends a renewed lock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from azure.servicebus import ServiceBusReceiveMode
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import MessageLockLostError

from chassis.queue import QueueOptions, ReceivedMessage
from chassis.queue.servicebus import (
    CONNECTION_STRING_ENV,
    CONNECTION_STRING_FILE_ENV,
    LOCK_MARGIN_SECONDS,
    REPLAY_OF_PROPERTY,
    ServiceBusQueue,
    ServiceBusTarget,
    application_properties,
    connection_string_from_env,
    logical_message_id,
)
from workflow.consumer import Consumer
from workflow.service import Complete, Outcome

CONNECTION_STRING = (
    "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
)


def test_the_url_names_the_namespace_and_the_queue() -> None:
    target = ServiceBusTarget.parse("servicebus://drones.servicebus.windows.net/deliveryrequests")
    assert target == ServiceBusTarget("drones.servicebus.windows.net", "deliveryrequests")


def test_a_trailing_slash_is_accepted() -> None:
    assert ServiceBusTarget.parse("servicebus://ns.servicebus.windows.net/q/").queue == "q"


@pytest.mark.parametrize(
    "url",
    [
        "amqp://ns.servicebus.windows.net/q",  # another scheme
        "servicebus://ns.servicebus.windows.net",  # no queue
        "servicebus://ns.servicebus.windows.net/",  # empty queue
        "servicebus:///q",  # no namespace
        "servicebus://ns.servicebus.windows.net/topic/subscriptions/s",  # not a queue
    ],
)
def test_a_url_without_exactly_a_namespace_and_a_queue_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="servicebus://"):
        ServiceBusTarget.parse(url)


def test_without_a_connection_string_entra_id_is_used() -> None:
    assert connection_string_from_env({}) is None
    assert connection_string_from_env({CONNECTION_STRING_ENV: "  "}) is None


def test_a_connection_string_in_the_environment_is_used() -> None:
    env = {CONNECTION_STRING_ENV: f" {CONNECTION_STRING}\n"}
    assert connection_string_from_env(env) == CONNECTION_STRING


def test_a_connection_string_in_a_mounted_file_is_used(tmp_path: Path) -> None:
    secret = tmp_path / "servicebus-connection-string"
    secret.write_text(CONNECTION_STRING + "\n")  # mounted secrets often end with a newline
    env = {CONNECTION_STRING_FILE_ENV: str(secret)}
    assert connection_string_from_env(env) == CONNECTION_STRING


def test_a_missing_or_empty_file_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unreadable"):
        connection_string_from_env({CONNECTION_STRING_FILE_ENV: str(tmp_path / "absent")})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        connection_string_from_env({CONNECTION_STRING_FILE_ENV: str(empty)})


def test_both_a_connection_string_and_a_file_is_ambiguous(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(CONNECTION_STRING)
    env = {CONNECTION_STRING_ENV: CONNECTION_STRING, CONNECTION_STRING_FILE_ENV: str(secret)}
    with pytest.raises(ValueError, match="not both"):
        connection_string_from_env(env)


def test_a_replayed_message_keeps_the_id_the_application_knows() -> None:
    assert logical_message_id("broker-id", {}) == "broker-id"
    assert logical_message_id("new-broker-id", {REPLAY_OF_PROPERTY: "original"}) == "original"
    assert logical_message_id(None, {}) == ""


def test_broker_and_replay_properties_are_not_application_properties() -> None:
    properties = {
        "operation": "delivery",
        REPLAY_OF_PROPERTY: "original",
        "DeadLetterReason": "MaxDeliveryCountExceeded",
        "DeadLetterErrorDescription": "Message could not be consumed after 3 delivery attempts.",
    }
    assert application_properties(properties) == {"operation": "delivery"}


# ---------------------------------------------------------------- against fakes of the SDK


class FakeMessage:
    """A ServiceBusReceivedMessage as the adapter reads it."""

    body_type = AmqpMessageBodyType.DATA
    delivery_count = 0

    def __init__(self, message_id: str, lock_seconds: float) -> None:
        self.message_id = message_id
        self.body = [b"{}"]
        self.application_properties = {b"operation": b"delivery"}
        self.enqueued_time_utc = datetime.now(UTC)
        self.locked_until_utc = datetime.now(UTC) + timedelta(seconds=lock_seconds)


class FakeReceiver:
    """A ServiceBusReceiver: receives wait until messages are given to it; settlements and
    renewals are recorded, each with how many receives were under way at the time."""

    def __init__(self, lock_seconds: float) -> None:
        self.lock_seconds = lock_seconds
        self.ready: asyncio.Queue[FakeMessage] = asyncio.Queue()
        self.receiving = 0
        self.most_receiving = 0
        self.calls: list[tuple[str, str, float]] = []  # (what, message id, monotonic time)
        self.started_receiving = asyncio.Event()
        self.expired: list[str] = []  # renewals that came after the lock had expired

    async def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[FakeMessage]:
        self.receiving += 1
        self.most_receiving = max(self.most_receiving, self.receiving)
        self.started_receiving.set()
        try:
            try:
                first = await asyncio.wait_for(self.ready.get(), max_wait_time)
            except TimeoutError:
                return []
            got = [first]
            while len(got) < (max_message_count or 1) and not self.ready.empty():
                got.append(self.ready.get_nowait())
            return got
        finally:
            self.receiving -= 1

    def _record(self, what: str, message: FakeMessage) -> None:
        self.calls.append((what, message.message_id, time.monotonic()))

    async def complete_message(self, message: FakeMessage) -> None:
        self._record("complete", message)

    async def abandon_message(self, message: FakeMessage) -> None:
        self._record("abandon", message)

    async def dead_letter_message(
        self, message: FakeMessage, reason: str | None = None, error_description: str | None = None
    ) -> None:
        self._record("dead_letter", message)

    async def renew_message_lock(self, message: FakeMessage, **_: Any) -> datetime:
        self._record("renew", message)
        if datetime.now(UTC) > message.locked_until_utc:  # as the service: too late
            self.expired.append(message.message_id)
            raise MessageLockLostError(message="The lock on the message lock has expired.")
        message.locked_until_utc = datetime.now(UTC) + timedelta(seconds=self.lock_seconds)
        return message.locked_until_utc

    async def close(self) -> None:
        pass


class FakeSender:
    async def close(self) -> None:
        pass


class FakeClient:
    """A ServiceBusClient: hands out the one fake receiver and records how it was asked for."""

    def __init__(self, receiver: FakeReceiver) -> None:
        self.receiver = receiver
        self.receiver_options: dict[str, Any] = {}

    def get_queue_sender(self, queue: str) -> FakeSender:
        return FakeSender()

    def get_queue_receiver(self, queue: str, **options: Any) -> FakeReceiver:
        self.receiver_options = options
        return self.receiver

    async def close(self) -> None:
        pass


def adapter(lock_seconds: float = 30.0, prefetch: int = 32) -> tuple[ServiceBusQueue, FakeClient]:
    client = FakeClient(FakeReceiver(lock_seconds))
    queue = ServiceBusQueue(
        cast(Any, client),
        None,
        ServiceBusTarget("ns.servicebus.windows.net", "deliveryrequests"),
        QueueOptions(lock_seconds=lock_seconds, prefetch=prefetch),
    )
    return queue, client


async def received(queue: ServiceBusQueue, client: FakeClient, *ids: str) -> list[ReceivedMessage]:
    for message_id in ids:
        client.receiver.ready.put_nowait(FakeMessage(message_id, client.receiver.lock_seconds))
    return await queue.receive(max_messages=len(ids), wait_seconds=1.0)


async def test_nothing_is_prefetched_whatever_the_options_say() -> None:
    # Prefetched messages are locked from the moment they are fetched, and nothing renews
    # them in the SDK's buffer: a receive asks for what it can hand over, no more.
    queue, client = adapter(prefetch=32)
    await received(queue, client, "m1")
    assert client.receiver_options["prefetch_count"] == 0
    assert client.receiver_options["receive_mode"] is ServiceBusReceiveMode.PEEK_LOCK
    await queue.close()


async def test_a_receive_asks_for_as_many_as_the_caller_can_take() -> None:
    queue, client = adapter()
    for message_id in ("a", "b", "c"):
        client.receiver.ready.put_nowait(FakeMessage(message_id, 30))
    got = await queue.receive(max_messages=2, wait_seconds=1.0)
    assert [m.message_id for m in got] == ["a", "b"]
    assert [m.delivery_count for m in got] == [1, 1]
    await queue.close()


@pytest.mark.parametrize("action", ["complete", "abandon", "dead_letter", "renew"])
async def test_settling_and_renewing_do_not_wait_for_a_receive_under_way(action: str) -> None:
    queue, client = adapter()
    [message] = await received(queue, client, "m1")
    waiting = asyncio.create_task(queue.receive(max_messages=4, wait_seconds=60))
    await asyncio.wait_for(client.receiver.started_receiving.wait(), 5)
    client.receiver.started_receiving.clear()
    settle = {
        "complete": lambda: queue.complete(message),
        "abandon": lambda: queue.abandon(message),
        "dead_letter": lambda: queue.dead_letter(message, reason="r", description="d"),
        "renew": lambda: queue.renew_lock(message),
    }[action]
    await asyncio.wait_for(settle(), 5)  # the receive waits on: it does not hold this up
    assert [(what, message_id) for what, message_id, _ in client.receiver.calls] == [(action, "m1")]
    assert client.receiver.receiving == 1  # and it was under way throughout
    client.receiver.ready.put_nowait(FakeMessage("m2", 30))
    assert [m.message_id for m in await asyncio.wait_for(waiting, 5)] == ["m2"]
    await queue.close()


async def test_receives_never_run_at_once_on_the_sdk_receiver() -> None:
    queue, client = adapter()
    receives = [asyncio.create_task(queue.receive(max_messages=1)) for _ in range(3)]
    await asyncio.wait_for(client.receiver.started_receiving.wait(), 5)
    for message_id in ("a", "b", "c"):
        client.receiver.ready.put_nowait(FakeMessage(message_id, 30))
    got = await asyncio.wait_for(asyncio.gather(*receives), 5)
    assert sorted(m.message_id for batch in got for m in batch) == ["a", "b", "c"]
    assert client.receiver.most_receiving == 1
    await queue.close()


async def test_a_delay_longer_than_the_lock_is_held_with_renewals_then_abandoned() -> None:
    # A 2.6 s lock, renewed LOCK_MARGIN_SECONDS before it ends: held 1.5 s, a 2.5 s delay
    # needs one renewal. An expiry instead would return the message early.
    lock = LOCK_MARGIN_SECONDS + 0.6
    queue, client = adapter(lock_seconds=lock)
    [message] = await received(queue, client, "m1")
    began = time.monotonic()
    await queue.abandon(message, delay_seconds=2.5)
    deadline = time.monotonic() + 10
    while not any(what == "abandon" for what, _, _ in client.receiver.calls):
        assert time.monotonic() < deadline, "never abandoned"
        await asyncio.sleep(0.05)  # polling interval while waiting on a condition, bounded
    whats = [what for what, _, _ in client.receiver.calls]
    assert whats[-1] == "abandon"
    assert "renew" in whats
    assert client.receiver.calls[-1][2] - began >= 2.5  # the whole delay, not cut short
    await queue.close()


async def test_a_short_delay_is_held_without_renewing() -> None:
    queue, client = adapter(lock_seconds=30)
    [message] = await received(queue, client, "m1")
    await queue.abandon(message, delay_seconds=0.2)
    deadline = time.monotonic() + 10
    while not client.receiver.calls:
        assert time.monotonic() < deadline, "never abandoned"
        await asyncio.sleep(0.05)  # polling interval while waiting on a condition, bounded
    assert [what for what, _, _ in client.receiver.calls] == ["abandon"]
    await queue.close()


async def test_a_message_the_consumer_works_on_keeps_its_lock_while_it_waits_for_more() -> None:
    # The consumer renews every half lock; its next receive waits a second for messages
    # meanwhile. Renewals that queued behind that receive came after a 1 s lock had ended.
    queue, client = adapter(lock_seconds=1.0)
    client.receiver.ready.put_nowait(FakeMessage("long", 1.0))
    finish = asyncio.Event()

    async def handler(message: ReceivedMessage) -> Outcome:
        await finish.wait()
        return Complete()

    consumer = Consumer(cast(Any, queue), handler, concurrency=2, lock_seconds=1.0)
    running = asyncio.create_task(consumer.run())
    deadline = time.monotonic() + 15
    while sum(what == "renew" for what, _, _ in client.receiver.calls) < 5:
        assert time.monotonic() < deadline, "not renewed"
        await asyncio.sleep(0.05)  # polling interval while waiting on a condition, bounded
    finish.set()
    await consumer.stop(5)
    running.cancel()
    assert client.receiver.expired == []
    assert client.receiver.calls[-1][:2] == ("complete", "long")
    await queue.close()
