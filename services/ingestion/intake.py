"""Where accepted requests go: the record store and the queue, each written in groups.

Concurrent accepts share their round trips (chassis/batching.py): one store call creates
the records of every new request waiting, one queue call sends every message waiting, and
each request is answered only once its own record and message are durable. Idle, a
request goes alone at once; under load the groups grow, bounded by `max_batch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chassis.batching import GroupCommit
from chassis.documents import JSON, Document, DocumentStore
from chassis.queue import MessageQueue, OutgoingMessage
from chassis.telemetry import MessagingTarget

# Messages of a few hundred bytes: 64 stay far below every queue's batch size limit
# (Service Bus: 256 KB on Standard).
MAX_BATCH = 64


@dataclass
class Intake:
    queue: MessageQueue
    store: DocumentStore
    target: MessagingTarget
    max_batch: int = MAX_BATCH
    _records: GroupCommit[tuple[str, JSON], Document | None] = field(init=False)
    _messages: GroupCommit[OutgoingMessage, None] = field(init=False)

    def __post_init__(self) -> None:
        self._records = GroupCommit(self.store.create_many, max_batch=self.max_batch)
        self._messages = GroupCommit(self._send_many, max_batch=self.max_batch)

    async def create_record(self, id: str, body: JSON) -> Document | None:
        """The record created, or None where the id was taken already."""
        return await self._records.submit((id, body))

    async def send(self, message: OutgoingMessage) -> None:
        """Return once the queue holds the message durably (or raise)."""
        await self._messages.submit(message)

    async def _send_many(self, messages: Sequence[OutgoingMessage]) -> list[None]:
        await self.queue.send_many(messages)
        return [None] * len(messages)

    async def close(self) -> None:
        """Let what was submitted finish (the server stops taking requests first)."""
        await self._records.close()
        await self._messages.close()
