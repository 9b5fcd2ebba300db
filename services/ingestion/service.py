"""Use cases: turn a client's request into a queued message, and only then say yes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from chassis.queue import MessageQueue, OutgoingMessage
from contracts.messages import (
    CancelRequested,
    DeliveryRequested,
    Operation,
    RescheduleRequested,
)
from ingestion.schemas import DeliveryRequest, RescheduleRequest


def _message(message_id: str, operation: Operation, body: str) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id,
        body=body.encode(),
        properties={"operation": operation.value},
    )


async def accept_delivery(*, queue: MessageQueue, request: DeliveryRequest) -> str:
    """Queue a new delivery; return its id once the queue has it durably."""
    delivery_id = str(uuid.uuid4())
    message = DeliveryRequested(
        deliveryId=delivery_id, requestedAt=datetime.now(UTC), **request.model_dump()
    )
    # The delivery id is the message id, so the queue's duplicate detection sees resends.
    await queue.send(_message(delivery_id, Operation.DELIVERY, message.model_dump_json()))
    return delivery_id


async def accept_reschedule(
    *, queue: MessageQueue, delivery_id: str, request: RescheduleRequest
) -> None:
    message = RescheduleRequested(
        deliveryId=delivery_id,
        requestedAt=datetime.now(UTC),
        **request.model_dump(exclude_unset=True),
    )
    await queue.send(
        _message(
            str(uuid.uuid4()), Operation.RESCHEDULE, message.model_dump_json(exclude_unset=True)
        )
    )


async def accept_cancel(*, queue: MessageQueue, delivery_id: str) -> None:
    message = CancelRequested(deliveryId=delivery_id, requestedAt=datetime.now(UTC))
    await queue.send(_message(str(uuid.uuid4()), Operation.CANCEL, message.model_dump_json()))


def public_body(request: DeliveryRequest | RescheduleRequest, **extra: str) -> dict[str, object]:
    return {**json.loads(request.model_dump_json(exclude_unset=False)), **extra}
