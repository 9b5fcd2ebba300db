"""Use cases: turn a client's request into a queued message, and only then say yes."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

from chassis import telemetry
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


async def accept_delivery(
    *, queue: MessageQueue, target: MessagingTarget, request: DeliveryRequest
) -> str:
    """Queue a new delivery; return its id once the queue has it durably."""
    delivery_id = str(uuid.uuid4())
    message = DeliveryRequested(
        deliveryId=delivery_id, requestedAt=datetime.now(UTC), **request.model_dump()
    )
    # The delivery id is the message id, so the queue's duplicate detection sees resends.
    await _send(
        queue=queue,
        target=target,
        delivery_id=delivery_id,
        message_id=delivery_id,
        operation=Operation.DELIVERY,
        body=message.model_dump_json(),
    )
    return delivery_id


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
