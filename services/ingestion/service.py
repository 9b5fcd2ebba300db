"""Use cases: turn a client's request into a queued message, and only then say yes.

Ingestion keeps a record of each delivery request it accepted (its own store): so that a
POST retried with the same Idempotency-Key answers the same delivery instead of creating a
second one, and so that a reschedule or cancel of an id it never issued is a 404 at once.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime

from chassis import telemetry
from chassis.documents import Collection, DocumentExists, DocumentStore
from chassis.logs import bind_log_fields
from chassis.queue import MessageQueue, OutgoingMessage
from chassis.telemetry import MessagingTarget
from contracts.messages import (
    CancelRequested,
    DeliveryRequested,
    Operation,
    RescheduleRequested,
)
from ingestion.metrics import ENQUEUE_SECONDS
from ingestion.schemas import DeliveryRequest, RescheduleRequest


async def _send(
    *,
    queue: MessageQueue,
    target: MessagingTarget,
    delivery_id: str,
    message_id: str,
    operation: Operation,
    body: str,
) -> None:
    """Send within a PRODUCER span whose context travels in the message's properties, so
    that workflow's processing joins the client's trace (see chassis/telemetry.py)."""
    bind_log_fields(deliveryId=delivery_id)
    message = OutgoingMessage(
        message_id=message_id, body=body.encode(), properties={"operation": operation.value}
    )
    outcome = "error"
    started = time.perf_counter()
    try:
        with telemetry.producer_span(
            target,
            message_id=message_id,
            properties=message.properties,
            body_size=len(message.body),
            attributes={"delivery.id": delivery_id, "delivery.operation": operation.value},
        ):
            await queue.send(message)
        outcome = "ok"
    finally:
        ENQUEUE_SECONDS.labels(operation.value, outcome).observe(time.perf_counter() - started)


DELIVERY_REQUESTS = Collection(name="deliveryrequests", indexed=("ownerId",), partition_key="id")
# Keys are scoped by owner: two clients choosing the same key never meet.
_IDEMPOTENCY_NAMESPACE = uuid.UUID("5b1f6c3e-8f0a-4d47-9a55-2f3c1c0f6d21")


class IdempotencyKeyReused(Exception):
    """The key was first used for a different request."""


class UnknownDelivery(Exception):
    """No delivery request with this id was ever accepted here."""


def _fingerprint(request: DeliveryRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


async def accept_delivery(
    *,
    queue: MessageQueue,
    store: DocumentStore,
    target: MessagingTarget,
    request: DeliveryRequest,
    idempotency_key: str | None = None,
) -> str:
    """Queue a new delivery; return its id once the queue has it durably.

    With an idempotency key the id is derived from it, and a repeat sends the very message
    it sent the first time (the first send may have failed after the record was written).
    """
    fingerprint = _fingerprint(request)
    if idempotency_key is None:
        delivery_id = str(uuid.uuid4())
    else:
        delivery_id = str(
            uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{request.ownerId}\n{idempotency_key}")
        )
    body = DeliveryRequested(
        deliveryId=delivery_id, requestedAt=datetime.now(UTC), **request.model_dump()
    ).model_dump_json()
    record = {
        "ownerId": request.ownerId,
        "fingerprint": fingerprint,
        "message": body,
        "acceptedAt": datetime.now(UTC).isoformat(),
    }
    # Created first, read only if it exists: a new request (nearly all) costs one call.
    try:
        await store.create(delivery_id, record)
    except DocumentExists:  # a repeat of this key, or the same key concurrently
        recorded = await _recorded_message(store, delivery_id, fingerprint)
        assert recorded is not None  # records are never deleted
        body = recorded
    # The delivery id is the message id, so the queue's duplicate detection sees resends.
    await _send(
        queue=queue,
        target=target,
        delivery_id=delivery_id,
        message_id=delivery_id,
        operation=Operation.DELIVERY,
        body=body,
    )
    return delivery_id


async def _recorded_message(store: DocumentStore, delivery_id: str, fingerprint: str) -> str | None:
    doc = await store.get(delivery_id)
    if doc is None:
        return None
    if doc.body["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused(delivery_id)
    message: str = doc.body["message"]
    return message


async def owner_of(*, store: DocumentStore, delivery_id: str) -> str:
    """The owner of an accepted delivery request; UnknownDelivery if there is none."""
    doc = await store.get(delivery_id)
    if doc is None:
        raise UnknownDelivery(delivery_id)
    owner: str = doc.body["ownerId"]
    return owner


async def accept_reschedule(
    *,
    queue: MessageQueue,
    target: MessagingTarget,
    delivery_id: str,
    request: RescheduleRequest,
) -> None:
    message = RescheduleRequested(
        deliveryId=delivery_id,
        requestedAt=datetime.now(UTC),
        **request.model_dump(exclude_unset=True),
    )
    await _send(
        queue=queue,
        target=target,
        delivery_id=delivery_id,
        message_id=str(uuid.uuid4()),
        operation=Operation.RESCHEDULE,
        body=message.model_dump_json(exclude_unset=True),
    )


async def accept_cancel(*, queue: MessageQueue, target: MessagingTarget, delivery_id: str) -> None:
    message = CancelRequested(deliveryId=delivery_id, requestedAt=datetime.now(UTC))
    await _send(
        queue=queue,
        target=target,
        delivery_id=delivery_id,
        message_id=str(uuid.uuid4()),
        operation=Operation.CANCEL,
        body=message.model_dump_json(),
    )


def public_body(request: DeliveryRequest | RescheduleRequest, **extra: str) -> dict[str, object]:
    return {**json.loads(request.model_dump_json(exclude_unset=False)), **extra}
