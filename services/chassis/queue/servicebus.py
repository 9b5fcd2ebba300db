"""The peek-lock queue on Azure Service Bus, whose semantics the others copy.

The queue belongs to infrastructure, which sets what the data plane cannot: lock duration,
max delivery count (keep it equal to QueueOptions.max_delivery_count), duplicate detection
on the message id. Workload identity signs in through DefaultAzureCredential; emulators
and local runs give SERVICEBUS_CONNECTION_STRING, or SERVICEBUS_CONNECTION_STRING_FILE
naming a file (a Key Vault CSI mount).

Locks expire after the queue's lock duration: whoever holds a message through long work
(workflow) calls renew_lock as it goes. The adapter renews on its own only a message it
holds itself (an abandon with a delay), so a hung consumer loses its messages to others, as
with every adapter.

No prefetch (QueueOptions.prefetch is for brokers that do not lock ahead): a prefetched
message is locked from the moment it is fetched and waits in the SDK's buffer, where nothing
renews it, for a consumer slot that may be held longer than the lock; each expiry there
counts a delivery. With prefetch 0 a receive asks the service for exactly the messages it
can hand over (the consumer asks for its free slots), and the SDK releases, uncounted,
whatever arrives after a receive has returned.

Receiving and settling do not wait for each other. The SDK promises no coroutine-safety,
so one receive runs at a time (a receive drains the receiver's buffer and grants link
credit: two at once would interfere), and settlements and lock renewals run one at a time.
But a receive can wait its whole wait time for messages, and renewals and settlements must
not queue behind it: in the SDK's AMQP transport (pyamqp, its default) frames are read and
written under the transport's socket lock and each is handed to the link it belongs to,
whichever coroutine read it; a settlement waits for its own outcome by delivery id, a
renewal for its own management response by operation id.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.identity.aio import DefaultAzureCredential
from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import (
    MessageAlreadySettled,
    MessageLockLostError,
    ServiceBusError,
    SessionLockLostError,
)

from chassis.queue import (
    DeadLetter,
    MessageLockLost,
    OutgoingMessage,
    QueueError,
    QueueOptions,
    ReceivedMessage,
)

CONNECTION_STRING_ENV = "SERVICEBUS_CONNECTION_STRING"
CONNECTION_STRING_FILE_ENV = "SERVICEBUS_CONNECTION_STRING_FILE"
# A replay gets a new broker id, or duplicate detection would drop it as a resend; the
# id the application knows travels in this property and is given back on receive.
REPLAY_OF_PROPERTY = "replayOf"
# Set by Service Bus on dead letters; not application properties of ours.
_BROKER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})
MIN_WAIT_SECONDS = 0.1  # the SDK refuses 0 and reads None as "wait forever"
DEAD_LETTER_SCAN_BATCH = 32
REPLAY_SCAN_LIMIT = 10_000
LOCK_ERRORS = (MessageLockLostError, MessageAlreadySettled, SessionLockLostError)
# A message the adapter holds has its lock renewed this long before the lock expires.
LOCK_MARGIN_SECONDS = 2.0


@dataclass(frozen=True)
class ServiceBusTarget:
    """servicebus://NAMESPACE.servicebus.windows.net/QUEUE"""

    namespace: str  # fully qualified
    queue: str

    @classmethod
    def parse(cls, url: str) -> ServiceBusTarget:
        parts = urlsplit(url)
        queue = parts.path.strip("/")
        if parts.scheme != "servicebus" or not parts.hostname or not queue or "/" in queue:
            raise ValueError(
                f"expected servicebus://NAMESPACE.servicebus.windows.net/QUEUE, got {url!r}"
            )
        return cls(namespace=parts.hostname, queue=queue)


def connection_string_from_env(env: Mapping[str, str]) -> str | None:
    """The connection string to use, or None to sign in with Entra ID."""
    value = env.get(CONNECTION_STRING_ENV, "").strip()
    path = env.get(CONNECTION_STRING_FILE_ENV, "").strip()
    if value and path:
        raise ValueError(f"set {CONNECTION_STRING_ENV} or {CONNECTION_STRING_FILE_ENV}, not both")
    if value:
        return value
    if not path:
        return None
    try:
        text = Path(path).read_text().strip()
    except OSError as e:
        raise ValueError(f"{CONNECTION_STRING_FILE_ENV} names {path}, unreadable: {e}") from e
    if not text:
        raise ValueError(f"{CONNECTION_STRING_FILE_ENV} names {path}, which is empty")
    return text


def logical_message_id(broker_id: str | None, properties: Mapping[str, str]) -> str:
    return properties.get(REPLAY_OF_PROPERTY) or broker_id or ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _all_properties(message: ServiceBusReceivedMessage) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (message.application_properties or {}).items()}


def application_properties(properties: Mapping[str, str]) -> dict[str, str]:
    hidden = _BROKER_PROPERTIES | {REPLAY_OF_PROPERTY}
    return {k: v for k, v in properties.items() if k not in hidden}


def _body(message: ServiceBusReceivedMessage) -> bytes:
    if message.body_type == AmqpMessageBodyType.DATA:
        return b"".join(message.body)
    # An AMQP value or sequence from another producer: hand it over as text rather than
    # fail the whole receive; the consumer's decoding dead-letters it if it is unexpected.
    return str(message).encode()


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value is not None else time.time()


@dataclass(eq=False)
class _Lock:
    owner: ServiceBusQueue
    message: ServiceBusReceivedMessage
    settled: bool = False


def _outgoing(message_id: str, body: bytes, properties: Mapping[str, str]) -> ServiceBusMessage:
    application: dict[str | bytes, Any] = {k: v for k, v in properties.items()}
    return ServiceBusMessage(body, message_id=message_id, application_properties=application)


class ServiceBusQueue:
    def __init__(
        self,
        client: ServiceBusClient,
        credential: DefaultAzureCredential | None,
        target: ServiceBusTarget,
        options: QueueOptions,
    ) -> None:
        self._client = client
        self._credential = credential
        self._target = target
        self._options = options
        self._sender = client.get_queue_sender(target.queue)
        self._receiver: ServiceBusReceiver | None = None
        # The SDK's senders and receivers are not coroutine-safe (see above).
        self._send_lock = asyncio.Lock()
        self._receive_lock = asyncio.Lock()
        self._settle_lock = asyncio.Lock()  # settlements and renewals, not receives
        self._held: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, url: str, options: QueueOptions) -> ServiceBusQueue:
        target = ServiceBusTarget.parse(url)
        connection_string = connection_string_from_env(os.environ)
        if connection_string:
            return cls(
                ServiceBusClient.from_connection_string(connection_string), None, target, options
            )
        credential = DefaultAzureCredential()
        return cls(ServiceBusClient(target.namespace, credential), credential, target, options)

    async def send(self, message: OutgoingMessage) -> None:
        await self._send(message.message_id, message.body, dict(message.properties))

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        # One transfer for the list (the SDK refuses a list over the message size limit:
        # callers keep batches far below it).
        if messages:
            await self._transfer(
                [_outgoing(m.message_id, m.body, m.properties) for m in messages],
                f"{messages[0].message_id}..{messages[-1].message_id}",
            )

    async def _send(self, message_id: str, body: bytes, properties: dict[str, str]) -> None:
        await self._transfer([_outgoing(message_id, body, properties)], message_id)

    async def _transfer(self, outgoing: list[ServiceBusMessage], label: str) -> None:
        try:
            async with self._send_lock:
                await self._sender.send_messages(outgoing)
        except ServiceBusError as e:
            raise QueueError(f"Service Bus did not take message {label}: {e}") from e

    def _get_receiver(self) -> ServiceBusReceiver:
        # Opened on first receive: a sender-only process must not prefetch and lock messages.
        if self._receiver is None:
            self._receiver = self._client.get_queue_receiver(
                self._target.queue,
                receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
                prefetch_count=0,  # nothing locked ahead of a consumer slot (see above)
            )
        return self._receiver

    async def receive(
        self, *, max_messages: int = 1, wait_seconds: float = 1.0
    ) -> list[ReceivedMessage]:
        async with self._receive_lock:
            got = await self._get_receiver().receive_messages(
                max_message_count=max_messages,
                max_wait_time=max(wait_seconds, MIN_WAIT_SECONDS),
            )
        received = []
        for message in got:
            properties = _all_properties(message)
            received.append(
                ReceivedMessage(
                    message_id=logical_message_id(message.message_id, properties),
                    body=_body(message),
                    properties=application_properties(properties),
                    # The SDK reports prior deliveries (0 the first time).
                    delivery_count=(message.delivery_count or 0) + 1,
                    enqueued_at=_epoch(message.enqueued_time_utc),
                    handle=_Lock(self, message),
                )
            )
        return received

    def _live(self, message: ReceivedMessage) -> _Lock:
        lock = message.handle
        if not isinstance(lock, _Lock) or lock.owner is not self or lock.settled:
            raise MessageLockLost(message.message_id)
        return lock

    async def _on_receiver(self, message: ReceivedMessage, action: str, *, settle: bool) -> None:
        lock = self._live(message)
        if settle:
            lock.settled = True  # before any await: a concurrent second settle must fail
        receiver = self._get_receiver()
        try:
            async with self._settle_lock:
                if action == "complete":
                    await receiver.complete_message(lock.message)
                elif action == "abandon":
                    await receiver.abandon_message(lock.message)
                else:
                    await receiver.renew_message_lock(lock.message)
        except LOCK_ERRORS as e:
            raise MessageLockLost(message.message_id) from e
        except ValueError as e:  # the receiver was closed: its locks are gone
            raise MessageLockLost(message.message_id) from e

    async def complete(self, message: ReceivedMessage) -> None:
        await self._on_receiver(message, "complete", settle=True)

    async def abandon(self, message: ReceivedMessage, *, delay_seconds: float = 0.0) -> None:
        if delay_seconds <= 0:
            await self._on_receiver(message, "abandon", settle=True)
            return
        # Service Bus has no delayed abandon: hold the message for the delay, renewing its
        # lock while the delay outlasts it (an expiry would return it early), then abandon.
        lock = self._live(message)
        lock.settled = True  # to the consumer; the adapter holds it from here
        task = asyncio.create_task(self._abandon_later(lock.message, delay_seconds))
        self._held.add(task)
        task.add_done_callback(self._held.discard)

    async def _abandon_later(self, message: ServiceBusReceivedMessage, delay: float) -> None:
        until = time.monotonic() + delay
        locked_until = message.locked_until_utc or datetime.now(UTC)
        receiver = self._get_receiver()
        try:
            while True:
                left = until - time.monotonic()
                renew_in = (locked_until - datetime.now(UTC)).total_seconds() - LOCK_MARGIN_SECONDS
                if left <= renew_in:
                    await asyncio.sleep(max(left, 0.0))
                    break
                await asyncio.sleep(max(renew_in, 0.0))
                async with self._settle_lock:
                    renewed = await receiver.renew_message_lock(message)
                if renewed <= locked_until:
                    return  # a lock that does not move on: let it expire rather than spin
                locked_until = renewed
            async with self._settle_lock:
                await receiver.abandon_message(message)
        except (*LOCK_ERRORS, ValueError, ServiceBusError):
            pass  # the lock expired meanwhile, which released it anyway

    async def dead_letter(self, message: ReceivedMessage, *, reason: str, description: str) -> None:
        lock = self._live(message)
        lock.settled = True
        try:
            async with self._settle_lock:
                await self._get_receiver().dead_letter_message(
                    lock.message, reason=reason, error_description=description
                )
        except (*LOCK_ERRORS, ValueError) as e:
            raise MessageLockLost(message.message_id) from e

    async def renew_lock(self, message: ReceivedMessage) -> None:
        await self._on_receiver(message, "renew", settle=False)

    def _dead_letter_receiver(self, mode: ServiceBusReceiveMode) -> ServiceBusReceiver:
        return self._client.get_queue_receiver(
            self._target.queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER, receive_mode=mode
        )

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        # Peeking neither locks nor counts a delivery: the one non-destructive browse.
        found: list[DeadLetter] = []
        async with self._dead_letter_receiver(ServiceBusReceiveMode.PEEK_LOCK) as receiver:
            next_sequence = 0
            while len(found) < limit:
                batch = await receiver.peek_messages(
                    max_message_count=min(limit - len(found), DEAD_LETTER_SCAN_BATCH),
                    sequence_number=next_sequence,
                )
                if not batch:
                    break
                found.extend(self._dead_letter(m) for m in batch)
                next_sequence = (batch[-1].sequence_number or 0) + 1
        return found[:limit]

    def _dead_letter(self, message: ServiceBusReceivedMessage) -> DeadLetter:
        properties = _all_properties(message)
        return DeadLetter(
            message_id=logical_message_id(message.message_id, properties),
            body=_body(message),
            properties=application_properties(properties),
            reason=message.dead_letter_reason or "",
            description=message.dead_letter_error_description or "",
            # Service Bus records no dead-lettering time; the enqueue time stands in.
            dead_lettered_at=_epoch(message.enqueued_time_utc),
        )

    async def replay_dead_letter(self, message_id: str) -> bool:
        # Service Bus cannot receive one message by id: lock what comes until it is found,
        # then abandon the rest back to the dead-letter queue.
        held: list[ServiceBusReceivedMessage] = []
        async with self._dead_letter_receiver(ServiceBusReceiveMode.PEEK_LOCK) as receiver:
            try:
                while len(held) < REPLAY_SCAN_LIMIT:
                    batch = await receiver.receive_messages(
                        max_message_count=DEAD_LETTER_SCAN_BATCH, max_wait_time=1.0
                    )
                    if not batch:
                        return False
                    match = None
                    for dead in batch:
                        logical = logical_message_id(dead.message_id, _all_properties(dead))
                        if match is None and logical == message_id:
                            match = dead
                        else:
                            held.append(dead)
                    if match is not None:
                        await self._send(
                            uuid.uuid4().hex,
                            _body(match),
                            {
                                **application_properties(_all_properties(match)),
                                REPLAY_OF_PROPERTY: message_id,
                            },
                        )
                        await receiver.complete_message(match)
                        return True
                return False
            finally:
                for other in held:
                    try:
                        await receiver.abandon_message(other)
                    except (*LOCK_ERRORS, ServiceBusError):
                        pass  # its lock expired: it is back in the dead-letter queue anyway

    async def ping(self) -> None:
        # Opening the send link checks the address and the credential with Send rights only.
        async with self._send_lock:
            await self._sender.__aenter__()

    async def close(self) -> None:
        # Nothing is settled: locked messages come back when their locks expire.
        for task in tuple(self._held):
            task.cancel()
        try:
            await self._sender.close()
            if self._receiver is not None:
                await self._receiver.close()
            await self._client.close()
        finally:
            if self._credential is not None:
                await self._credential.close()

    async def drop(self) -> None:
        """For tests: empty the queue and its dead-letter queue (the queues themselves
        belong to infrastructure, so they are not deleted)."""
        for receiver in (
            self._client.get_queue_receiver(
                self._target.queue, receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
            ),
            self._dead_letter_receiver(ServiceBusReceiveMode.RECEIVE_AND_DELETE),
        ):
            async with receiver:
                while await receiver.receive_messages(max_message_count=100, max_wait_time=1.0):
                    pass
