"""A peek-lock message queue with Service Bus semantics, chosen by URL.

Ingestion sends, workflow receives. A received message is locked, not removed: the consumer
completes it when done, abandons it to have it delivered again, or dead-letters it with a
reason. A consumer that dies without settling loses its lock and the message comes back with
a higher delivery count; past the maximum count the queue dead-letters it itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit

MAX_DELIVERY_EXCEEDED = "MaxDeliveryCountExceeded"


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str
    body: bytes
    # Application properties: the `operation`, W3C trace context (`traceparent`), etc.
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class ReceivedMessage:
    message_id: str
    body: bytes
    properties: dict[str, str]
    delivery_count: int  # 1 on the first delivery
    enqueued_at: float  # epoch seconds, for queue lag
    handle: Any = field(default=None, repr=False)  # adapter's lock token / delivery tag


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: bytes
    properties: dict[str, str]
    reason: str
    description: str
    dead_lettered_at: float


class QueueError(Exception):
    pass


class MessageLockLost(QueueError):
    """The lock expired (or the channel closed) before the message was settled."""


class MessageQueue(Protocol):
    async def send(self, message: OutgoingMessage) -> None:
        """Return only once the message is durably stored by the queue (or raise)."""
        ...

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send the messages in one round trip where the queue can, in their order; return
        only once every one is durably stored, or raise (some may be stored then, as when a
        single send times out: a retry sends them again, and duplicate detection or the
        consumer's idempotence absorbs that)."""
        ...

    async def receive(
        self, *, max_messages: int = 1, wait_seconds: float = 1.0
    ) -> list[ReceivedMessage]:
        """Lock and return up to `max_messages`, waiting at most `wait_seconds` for one."""
        ...

    async def complete(self, message: ReceivedMessage) -> None: ...

    async def abandon(self, message: ReceivedMessage, *, delay_seconds: float = 0.0) -> None:
        """Release the lock so the message is delivered again (after `delay_seconds` where
        the queue supports it)."""
        ...

    async def dead_letter(
        self, message: ReceivedMessage, *, reason: str, description: str
    ) -> None: ...

    async def renew_lock(self, message: ReceivedMessage) -> None: ...

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]: ...

    async def replay_dead_letter(self, message_id: str) -> bool:
        """Send a dead-lettered message back to the queue; False if there is none."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class QueueDepth:
    waiting: int  # sent and not yet settled (some may be in a consumer's hands)
    dead_letters: int


@runtime_checkable
class CountsMessages(Protocol):
    """A queue that can say how many messages it holds, cheaply (the console asks at every
    refresh): SQLite and RabbitMQ can; Service Bus would need its management API."""

    async def depth(self) -> QueueDepth: ...


@dataclass(frozen=True)
class QueueOptions:
    lock_seconds: float = 30.0
    max_delivery_count: int = 10
    prefetch: int = 16


def with_default_queue(url: str, queue: str) -> str:
    """`url`, naming `queue` if it names none (or an empty one). The default is the
    service's to give: the chassis has none. A Service Bus URL names its queue in its path,
    which it cannot do without."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.scheme == "servicebus" or any(k == "queue" and v for k, v in query):
        return url
    named = [*((k, v) for k, v in query if k != "queue"), ("queue", queue)]
    # Not urlunsplit: it turns sqlite:///path into sqlite:/path.
    return f"{url.partition('?')[0]}?{urlencode(named)}"


async def connect_message_queue(url: str, options: QueueOptions | None = None) -> MessageQueue:
    """Open the queue named by `url`, declaring it idempotently.

    Schemes: sqlite:///path/queue.db?queue=NAME, amqp://user:pass@host:5672/vhost?queue=NAME,
    servicebus://namespace.servicebus.windows.net/NAME (Entra ID, or
    SERVICEBUS_CONNECTION_STRING for emulators).
    """
    options = options or QueueOptions()
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from chassis.queue.sqlite import SqliteQueue

        return await SqliteQueue.connect(url, options)
    if scheme in ("amqp", "amqps"):
        from chassis.queue.rabbitmq import RabbitQueue

        return await RabbitQueue.connect(url, options)
    if scheme == "servicebus":
        from chassis.queue.servicebus import ServiceBusQueue

        return await ServiceBusQueue.connect(url, options)
    raise ValueError(f"unsupported queue URL scheme {scheme!r} in {url!r}")
