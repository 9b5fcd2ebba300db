"""Use cases: turn a client's request into a queued message, and only then say yes.

Ingestion keeps a record of each delivery request it accepted (its own store): so that a
POST retried with the same Idempotency-Key answers the same delivery instead of creating a
second one, so that a reschedule or cancel of an id it never issued is a 404 at once, and
to number each delivery's operations (see contracts/messages.py): the record holds the
request as it now stands and its version.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chassis import telemetry
from chassis.documents import Collection, DocumentStore
from chassis.documents.updates import update_with_retry
from chassis.logs import bind_log_fields
from chassis.queue import OutgoingMessage
from contracts.messages import MESSAGE_TYPES, DeliveryRequested, Operation
from ingestion.intake import Intake
from ingestion.metrics import ENQUEUE_SECONDS
from ingestion.schemas import DeliveryRequest, RescheduleRequest


async def _send(
    *,
    intake: Intake,
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
            intake.target,
            message_id=message_id,
            properties=message.properties,
            body_size=len(message.body),
            attributes={"delivery.id": delivery_id, "delivery.operation": operation.value},
        ):
            await intake.send(message)
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
    intake: Intake,
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
    # Created first, read only if it exists: a new request (nearly all) costs one call, and
    # shares it with the other requests being accepted meanwhile (see intake.py).
    if await intake.create_record(delivery_id, record) is None:
        # A repeat of this key, or the same key concurrently.
        recorded = await _recorded_message(intake.store, delivery_id, fingerprint)
        assert recorded is not None  # records are never deleted
        body = recorded
    # The delivery id is the message id, so the queue's duplicate detection sees resends.
    await _send(
        intake=intake,
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


class DeliveryCancelled(Exception):
    """The delivery was cancelled: there is nothing left to reschedule."""


def _standing(record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The delivery request as it stands, and its version. Records written before versions
    were kept hold only the first message: that is version 1."""
    if "request" in record:
        return int(record["version"]), dict(record["request"])
    return 1, json.loads(record["message"])


async def owner_of(*, store: DocumentStore, delivery_id: str) -> str:
    """The owner of an accepted delivery request; UnknownDelivery if there is none."""
    doc = await store.get(delivery_id)
    if doc is None:
        raise UnknownDelivery(delivery_id)
    owner: str = doc.body["ownerId"]
    return owner


async def accept_reschedule(
    *,
    intake: Intake,
    delivery_id: str,
    request: RescheduleRequest,
    owns: Callable[[str], bool],
) -> None:
    """Queue the delivery request with the changes merged in, as its next version.
    DeliveryCancelled once it was cancelled; UnknownDelivery for an id never issued (or
    another owner's)."""
    # A field sent as null is not changed (as Java clients of the original send them).
    changes = {k: v for k, v in request.model_dump(mode="json").items() if v is not None}
    await _accept_change(
        intake=intake,
        delivery_id=delivery_id,
        operation=Operation.RESCHEDULE,
        changes=changes,
        owns=owns,
    )


async def accept_cancel(
    *,
    intake: Intake,
    delivery_id: str,
    owns: Callable[[str], bool],
) -> None:
    """Queue the cancel as the delivery's last version; a repeated cancel sends that same
    message again (the first send may have failed after the record was written)."""
    await _accept_change(
        intake=intake,
        delivery_id=delivery_id,
        operation=Operation.CANCEL,
        changes={},
        owns=owns,
    )


async def _accept_change(
    *,
    intake: Intake,
    delivery_id: str,
    operation: Operation,
    changes: dict[str, Any],
    owns: Callable[[str], bool],
) -> None:
    """Number the operation in the delivery's record, then send it.

    The record is written first, with its ETag: two replicas changing one delivery at once
    cannot both take the same version, and the later one merges onto the earlier one's
    changes. If the send then fails the client is told to retry (503); the record keeps the
    change, so the retry (or any later operation) sends it: every operation is idempotent.
    """
    message: DeliveryRequested | None = None

    def numbered(record: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal message
        if not owns(record["ownerId"]):
            raise UnknownDelivery(delivery_id)
        version, standing = _standing(record)
        if record.get("cancelled"):
            if operation is not Operation.CANCEL:
                raise DeliveryCancelled(delivery_id)
            message = MESSAGE_TYPES[operation].model_validate(standing)
            return None
        message = MESSAGE_TYPES[operation].model_validate(
            {**standing, **changes, "requestedAt": datetime.now(UTC), "version": version + 1}
        )
        return {
            **record,
            "version": message.version,
            "request": message.model_dump(mode="json"),
            "cancelled": operation is Operation.CANCEL,
        }

    if await update_with_retry(intake.store, delivery_id, numbered) is None:
        raise UnknownDelivery(delivery_id)
    assert message is not None  # made by the last change applied
    await _send(
        intake=intake,
        delivery_id=delivery_id,
        # One id per version: the queue's duplicate detection sees a resend as the same.
        message_id=f"{delivery_id}.v{message.version}",
        operation=operation,
        body=message.model_dump_json(),
    )


def public_body(request: DeliveryRequest | RescheduleRequest, **extra: str) -> dict[str, object]:
    return {**json.loads(request.model_dump_json(exclude_unset=False)), **extra}
