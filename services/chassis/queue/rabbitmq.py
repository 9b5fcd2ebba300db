"""The peek-lock queue on RabbitMQ (3.10 to 4.3): a quorum queue with a delivery limit.

What maps to Service Bus, and how:
- The lock is the unacked delivery: RabbitMQ holds it until the consumer settles it or its
  channel closes, so there is no lock expiry to renew (`lock_seconds` is not used). The
  broker-wide `consumer_timeout` (30 min by default) takes back one held longer: 3.x closes
  the channel; 4.3 cancels the consumer, and aio-pika's re-subscription under the same tag
  then makes it close the connection. Either way the lock is lost and the message returns.
- Abandon is `basic.reject(requeue=true)`, never `basic.nack`: since 4.3 (rabbitmq-server
  #15387) only a reject or a closed channel counts as a failed delivery, a nack returns the
  message for free, and a poison message abandoned that way would go round forever.
- Delivery count: the quorum queue counts failed deliveries in the `x-delivery-count`
  header; our count is that plus one. It is the number the broker holds against the limit
  on every version, so a count of N is the last delivery before the dead letters, as on
  Service Bus. 4.3's `x-acquired-count` (every hand-out) is not used: it also counts
  returns that are no failure of the message (a consumer timeout, a partition), which never
  dead-letter it, so it can run past the limit.
- Max delivery count: RabbitMQ dead-letters a message when a failed delivery takes its count
  past `x-delivery-limit`, so a limit of N - 1 allows N deliveries.
- Dead letters: the queue dead-letters into a fanout exchange bound to NAME.deadletter,
  at-least-once (3.10 supports it; it needs `x-overflow: reject-publish`).
- Completes that come in one turn of the loop are acked in one `basic.ack(multiple=true)`,
  which settles every earlier delivery tag on the channel: so it reaches only up to the first
  delivery still in hand, and the completes past that one are acked one by one.
- No duplicate detection and no per-message delay: consumers must stay idempotent, and
  `abandon(delay_seconds=...)` holds the message for the delay before releasing it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    FieldValue,
)
from aio_pika.exceptions import (
    AMQPError,
    AuthenticationError,
    ChannelInvalidStateError,
    ChannelPreconditionFailed,
)
from aiormq.abc import AbstractChannel

from chassis.queue import (
    MAX_DELIVERY_EXCEEDED,
    DeadLetter,
    MessageLockLost,
    OutgoingMessage,
    QueueDepth,
    QueueError,
    QueueOptions,
    ReceivedMessage,
)
from chassis.startup import connect_retrying

log = logging.getLogger(__name__)

CONNECT_RETRY_SECONDS = 60.0  # the broker takes ~10 s to accept work after a (re)start
CONNECT_TIMEOUT_SECONDS = 10.0
# Held abandons occupy a prefetch slot and must end well before consumer_timeout.
MAX_ABANDON_HOLD_SECONDS = 300.0
# replay_dead_letter holds what it scans unacked, in memory: bound it.
REPLAY_SCAN_LIMIT = 10_000

PERSISTENT = 2  # delivery mode: written to disk (a quorum queue keeps every message anyway)
REASON_HEADER = "x-dead-letter-reason"
DESCRIPTION_HEADER = "x-dead-letter-description"
# Headers the broker or this adapter set; everything else is an application property.
_BROKER_HEADERS = frozenset(
    {"x-delivery-count", "x-acquired-count", "x-death", REASON_HEADER, DESCRIPTION_HEADER}
)
_BROKER_HEADER_PREFIXES = ("x-first-death-", "x-last-death-")


@dataclass(frozen=True)
class RabbitTarget:
    """Where to connect and which queue to use, from amqp://user:pass@host/vhost?queue=NAME."""

    amqp_url: str  # the URL without `queue`, other query options kept for aio-pika
    queue: str

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.deadletter"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.queue}.dlx"

    @property
    def safe_address(self) -> str:
        parts = urlsplit(self.amqp_url)
        return f"{parts.hostname}:{parts.port or 5672} vhost {unquote(parts.path[1:]) or '/'}"

    @classmethod
    def parse(cls, url: str) -> RabbitTarget:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        name = next((v for k, v in query if k == "queue"), "")
        if not name:
            raise ValueError("the amqp URL names no queue: add ?queue=NAME")
        rest = urlencode([(k, v) for k, v in query if k != "queue"])
        return cls(amqp_url=urlunsplit(parts._replace(query=rest)), queue=name)


def queue_arguments(options: QueueOptions, dead_letter_exchange: str) -> dict[str, FieldValue]:
    if options.max_delivery_count < 1:
        raise ValueError("max_delivery_count must be at least 1")
    return {
        "x-queue-type": "quorum",
        # RabbitMQ dead-letters once returns exceed the limit: N - 1 returns, N deliveries.
        "x-delivery-limit": options.max_delivery_count - 1,
        "x-dead-letter-exchange": dead_letter_exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",  # required by at-least-once; no length limit is set
    }


class _Unsettled:
    """The deliveries of one consumer channel not yet settled, in delivery-tag order, so that
    completes that come in one turn of the loop go out as one basic.ack(multiple=True).

    A multiple ack settles every earlier tag on the channel, so it reaches only up to the
    first delivery still in hand (buffered, being handled, held by a delayed abandon, or its
    reject not yet written); completes past that one are acked one by one."""

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self._completed: dict[int, bool] = {}  # by tag: True once completed, ack not yet sent
        self._flush_due = False
        self._writing = asyncio.Lock()

    def delivered(self, tag: int) -> None:
        self._completed[tag] = False

    def released(self, tag: int) -> None:
        """Its reject is written (or its channel is gone): no ack may cover it any more."""
        self._completed.pop(tag, None)

    async def complete(self, tag: int) -> None:
        self._completed[tag] = True
        if self._flush_due:
            return  # the complete that came first this turn sends the ack
        self._flush_due = True
        try:
            await asyncio.sleep(0)  # the completes of this turn join in
        finally:
            self._flush_due = False
            await self._flush()

    async def _flush(self) -> None:
        # One flush at a time: a second one deciding while the first waits to write could
        # send a multiple ack over a tag the first is about to ack singly (a channel error).
        async with self._writing:
            upto: list[int] = []  # completed, nothing in hand before them
            singly: list[int] = []  # completed, behind one in hand
            in_hand = False
            for tag, completed in self._completed.items():
                if not completed:
                    in_hand = True
                elif in_hand:
                    singly.append(tag)
                else:
                    upto.append(tag)
            for tag in (*upto, *singly):
                del self._completed[tag]
            if upto:
                await self.channel.basic_ack(upto[-1], multiple=len(upto) > 1, wait=False)
            for tag in singly:
                await self.channel.basic_ack(tag, wait=False)


@dataclass(eq=False)
class _Delivery:
    owner: RabbitQueue
    message: AbstractIncomingMessage
    unsettled: _Unsettled
    settled: bool = False


def _channel_open(message: AbstractIncomingMessage) -> bool:
    try:
        return not message.channel.is_closed
    except ChannelInvalidStateError:
        return False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _application_properties(headers: Mapping[str, Any]) -> dict[str, str]:
    return {
        k: _text(v)
        for k, v in headers.items()
        if k not in _BROKER_HEADERS and not k.startswith(_BROKER_HEADER_PREFIXES)
    }


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _retryable(error: BaseException) -> bool:
    if isinstance(error, AuthenticationError) or "ACCESS_REFUSED" in str(error):
        return False  # wrong credentials do not get better by waiting
    return isinstance(error, OSError | TimeoutError)  # AMQPConnectionError is an OSError


class RabbitQueue:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        publisher: AbstractRobustChannel,
        dead_letter_exchange: AbstractExchange,
        target: RabbitTarget,
        options: QueueOptions,
    ) -> None:
        self._connection = connection
        self._publisher = publisher  # confirms on; also the channel that declared everything
        self._dead_letter_exchange = dead_letter_exchange
        self._target = target
        self._options = options
        self._buffer: asyncio.Queue[tuple[AbstractIncomingMessage, _Unsettled]] = asyncio.Queue()
        self._consumer: AbstractRobustChannel | None = None
        self._unsettled: _Unsettled | None = None  # of the consumer channel now open
        self._consumer_lock = asyncio.Lock()
        self._held: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, url: str, options: QueueOptions) -> RabbitQueue:
        target = RabbitTarget.parse(url)
        arguments = queue_arguments(options, target.dead_letter_exchange)
        connection = await _connect_with_retry(target)
        try:
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
            dead_letter_exchange = await _declare(publisher, target, arguments)
        except BaseException:
            await connection.close()
            raise
        return cls(connection, publisher, dead_letter_exchange, target, options)

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> None:
        await self._send(message)

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        # Published back to back on the confirming channel, so the frames go out in order
        # and the confirms come back together: one round trip for the batch, not one each.
        outcomes = await asyncio.gather(*(self._send(m) for m in messages), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _send(self, message: OutgoingMessage) -> None:
        await self._publish(
            "",  # the default exchange
            routing_key=self._target.queue,
            message_id=message.message_id,
            body=message.body,
            headers=dict(message.properties),
        )

    async def _publish(
        self,
        exchange: str,
        *,
        routing_key: str,
        message_id: str,
        body: bytes,
        headers: dict[str, FieldValue],
    ) -> None:
        # Straight to aiormq: aio-pika's Message and Exchange add only copies and checks.
        properties = aiormq.spec.Basic.Properties(
            message_id=message_id,
            headers=headers,
            delivery_mode=PERSISTENT,
            timestamp=datetime.now(UTC),
        )
        try:
            if self._publisher.is_closed:  # reconnecting: a publish now would wait forever
                raise ChannelInvalidStateError(f"{self._publisher!r} closed")
            # The abstract channel does not declare basic_publish's `wait`; aiormq's does.
            channel = cast(aiormq.Channel, await self._publisher.get_underlay_channel())
            # Confirms + mandatory: returns once stored, raises on a nack or when unroutable
            # (the channel raises on returns). wait=False: the confirm, not the socket
            # drain, says stored; and aiormq holds its publish lock through a drain, so
            # waiting for one would put each publish of a batch behind the last one's.
            confirmation = await channel.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                wait=False,
            )
        except (AMQPError, ChannelInvalidStateError) as e:
            raise QueueError(f"RabbitMQ did not take message {message_id}: {e!r}") from e
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise QueueError(f"RabbitMQ did not take message {message_id}: {confirmation!r}")

    # -- receiving ---------------------------------------------------------------------

    async def _ensure_consumer(self) -> None:
        # Started on first receive, not at connect: a sender-only process must not
        # take messages into a prefetch buffer it never reads.
        async with self._consumer_lock:
            if self._consumer is not None:
                return
            channel = await self._connection.channel(publisher_confirms=False)
            # 0 means "no prefetch" to Service Bus but "no limit" to RabbitMQ: take 1.
            await channel.set_qos(prefetch_count=max(self._options.prefetch, 1))
            queue = await channel.declare_queue(
                self._target.queue,
                durable=True,
                arguments=queue_arguments(self._options, self._target.dead_letter_exchange),
            )
            await queue.consume(self._on_message)
            self._consumer = channel

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            channel = message.channel
        except ChannelInvalidStateError:
            return  # closed already: the broker has requeued it
        unsettled = self._unsettled
        if unsettled is None or unsettled.channel is not channel:  # reopened: tags restart
            unsettled = self._unsettled = _Unsettled(channel)
        if message.delivery_tag is not None:
            unsettled.delivered(message.delivery_tag)
        self._buffer.put_nowait((message, unsettled))

    async def receive(
        self, *, max_messages: int = 1, wait_seconds: float = 1.0
    ) -> list[ReceivedMessage]:
        await self._ensure_consumer()
        received: list[ReceivedMessage] = []
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while len(received) < max_messages:
            try:
                if received:  # after the first, take only what is already here
                    message, unsettled = self._buffer.get_nowait()
                else:
                    async with asyncio.timeout_at(deadline):
                        message, unsettled = await self._buffer.get()
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if not _channel_open(message):
                continue  # its channel died (reconnect): the broker has requeued it
            received.append(self._received(message, unsettled))
        return received

    def _received(self, message: AbstractIncomingMessage, unsettled: _Unsettled) -> ReceivedMessage:
        headers = message.headers or {}
        returns = headers.get("x-delivery-count", 0)
        return ReceivedMessage(
            message_id=message.message_id or "",
            body=message.body,
            properties=_application_properties(headers),
            delivery_count=(returns if isinstance(returns, int) else 0) + 1,
            enqueued_at=_epoch(message.timestamp) or time.time(),
            handle=_Delivery(self, message, unsettled),
        )

    # -- settling ----------------------------------------------------------------------

    def _live(self, message: ReceivedMessage) -> _Delivery:
        delivery = message.handle
        if (
            not isinstance(delivery, _Delivery)
            or delivery.owner is not self
            or delivery.settled
            or not _channel_open(delivery.message)
        ):
            raise MessageLockLost(message.message_id)
        return delivery

    def _settle(self, message: ReceivedMessage) -> _Delivery:
        delivery = self._live(message)
        delivery.settled = True  # before any await: a concurrent second settle must fail
        return delivery

    async def complete(self, message: ReceivedMessage) -> None:
        await _ack(self._settle(message), message)

    async def abandon(self, message: ReceivedMessage, *, delay_seconds: float = 0.0) -> None:
        delivery = self._settle(message)
        if delay_seconds > 0:
            # No per-message delay without plugins: keep the lock for the delay, then release.
            task = asyncio.create_task(
                _release_later(delivery, min(delay_seconds, MAX_ABANDON_HOLD_SECONDS))
            )
            self._held.add(task)
            task.add_done_callback(self._held.discard)
            return
        if not await _release(delivery):
            raise MessageLockLost(message.message_id)

    async def dead_letter(self, message: ReceivedMessage, *, reason: str, description: str) -> None:
        delivery = self._settle(message)
        # The copy is confirmed before the original is acked: a crash in between leaves a
        # duplicate dead letter, never a lost message.
        try:
            await self._publish(
                self._dead_letter_exchange.name,
                routing_key=self._target.queue,
                message_id=message.message_id,
                body=message.body,
                headers={
                    **message.properties,
                    REASON_HEADER: reason,
                    DESCRIPTION_HEADER: description,
                },
            )
        except QueueError:
            await _release(delivery)  # not dead-lettered: let it be delivered again
            raise
        await _ack(delivery, message)

    async def renew_lock(self, message: ReceivedMessage) -> None:
        self._live(message)  # held until settled or the channel closes: nothing to extend

    # -- dead letters ------------------------------------------------------------------

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        # Browse by basic.get without ack, then close the channel: a classic queue puts
        # requeued messages back in their places. Concurrent readers miss what is held.
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            queue = await channel.get_queue(self._target.dead_letter_queue, ensure=False)
            found: list[DeadLetter] = []
            while len(found) < limit and (incoming := await _get(queue)) is not None:
                found.append(self._dead_letter(incoming))
            return found
        finally:
            await channel.close()

    def _dead_letter(self, incoming: AbstractIncomingMessage) -> DeadLetter:
        headers = incoming.headers or {}
        sent_at = _epoch(incoming.timestamp) or 0.0
        if REASON_HEADER in headers:  # dead-lettered by a consumer through this adapter
            reason = _text(headers[REASON_HEADER])
            description = _text(headers.get(DESCRIPTION_HEADER, ""))
            at = sent_at  # the copy's timestamp is when it was dead-lettered
        else:  # dead-lettered by the broker
            death = _first_death(headers)
            broker_reason = _text(headers.get("x-first-death-reason", death.get("reason", "")))
            at = _epoch(death.get("time")) or sent_at
            if broker_reason == "delivery_limit":
                reason = MAX_DELIVERY_EXCEEDED
                description = (
                    f"delivered {self._options.max_delivery_count} times without being completed"
                )
            else:
                reason = broker_reason or "unknown"
                description = f"dead-lettered by RabbitMQ ({broker_reason})"
        return DeadLetter(
            message_id=incoming.message_id or "",
            body=incoming.body,
            properties=_application_properties(headers),
            reason=reason,
            description=description,
            dead_lettered_at=at,
        )

    async def replay_dead_letter(self, message_id: str) -> bool:
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            queue = await channel.get_queue(self._target.dead_letter_queue, ensure=False)
            for _ in range(REPLAY_SCAN_LIMIT):
                incoming = await _get(queue)
                if incoming is None:
                    return False
                if incoming.message_id != message_id:
                    continue  # stays unacked; the channel close below puts it back
                await self._publish(
                    "",  # the default exchange
                    routing_key=self._target.queue,
                    message_id=message_id,
                    body=incoming.body,
                    headers=dict(_application_properties(incoming.headers or {})),
                )
                await incoming.ack()
                return True
            return False
        finally:
            await channel.close()

    # -- lifecycle ---------------------------------------------------------------------

    async def depth(self) -> QueueDepth:
        # A passive declare answers with the count of ready messages (held ones not counted).
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            counts = []
            for name in (self._target.queue, self._target.dead_letter_queue):
                declared = await channel.declare_queue(name, passive=True)
                counts.append(int(declared.declaration_result.message_count or 0))
        finally:
            await channel.close()
        return QueueDepth(waiting=counts[0], dead_letters=counts[1])

    async def ping(self) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(self._target.queue, passive=True)
        finally:
            await channel.close()

    async def close(self) -> None:
        # Nothing is settled: unacked messages go back to the queue, as for a dead consumer.
        for task in tuple(self._held):
            task.cancel()
        await self._connection.close()

    async def drop(self) -> None:
        """Delete the queue, its dead-letter queue and exchange (tests clean up with it)."""
        if self._consumer is not None:
            await self._consumer.close()  # or the broker cancels it, loudly
            self._consumer = None
        channel = self._publisher
        await channel.queue_delete(self._target.queue)
        await channel.queue_delete(self._target.dead_letter_queue)
        await channel.exchange_delete(self._target.dead_letter_exchange)


async def _connect_with_retry(target: RabbitTarget) -> AbstractRobustConnection:
    async for attempt in connect_retrying(
        f"RabbitMQ at {target.safe_address}", retry_on=_retryable, within=CONNECT_RETRY_SECONDS
    ):
        with attempt:
            return await aio_pika.connect_robust(target.amqp_url, timeout=CONNECT_TIMEOUT_SECONDS)
    raise AssertionError("unreachable: tenacity re-raises the last error")


async def _declare(
    channel: AbstractRobustChannel, target: RabbitTarget, arguments: dict[str, FieldValue]
) -> AbstractExchange:
    try:
        exchange = await channel.declare_exchange(
            target.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        # Classic, not quorum: browsing requeues, and a classic queue keeps requeued
        # messages in place without counting deliveries.
        dead_letters = await channel.declare_queue(target.dead_letter_queue, durable=True)
        await dead_letters.bind(exchange)
        await channel.declare_queue(target.queue, durable=True, arguments=arguments)
        return exchange
    except ChannelPreconditionFailed as e:
        raise QueueError(
            f"queue {target.queue!r} exists with other settings ({e}); quorum queue arguments"
            " cannot change: delete it or override them with a policy"
        ) from e


async def _get(queue: AbstractQueue) -> AbstractIncomingMessage | None:
    return await queue.get(no_ack=False, fail=False)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], Mapping):
        return deaths[-1]  # x-death lists the most recent first
    return {}


async def _ack(delivery: _Delivery, message: ReceivedMessage) -> None:
    tag = delivery.message.delivery_tag
    try:
        if tag is not None:
            await delivery.unsettled.complete(tag)
    except (AMQPError, ChannelInvalidStateError) as e:
        raise MessageLockLost(message.message_id) from e


async def _release(delivery: _Delivery) -> bool:
    """Requeue as a failed delivery; False if the channel had closed (which requeued it)."""
    incoming = delivery.message
    try:
        # reject, not nack: since 4.3 only reject counts toward x-delivery-limit.
        await incoming.reject(requeue=True)
    except (AMQPError, ChannelInvalidStateError):
        return False
    # Only once the reject is written: until then a multiple ack must not reach it.
    if incoming.delivery_tag is not None:
        delivery.unsettled.released(incoming.delivery_tag)
    return True


async def _release_later(delivery: _Delivery, delay: float) -> None:
    await asyncio.sleep(delay)
    await _release(delivery)
