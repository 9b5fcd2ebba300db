"""Use cases over the delivery store. Writes are idempotent and ordered by the request's
version (contracts/messages.py), so a repeated or late message from workflow never undoes
a newer one; a cancellation is final."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chassis.documents import Collection, DocumentExists, DocumentStore
from chassis.documents.updates import Change, update_with_retry
from delivery.models import Status, status_of
from delivery.schemas import (
    Confirmation,
    DeliveryCancellation,
    DeliveryFailure,
    DeliveryReschedule,
    DeliverySchedule,
    NotifyMeRequest,
)

DELIVERIES = Collection(name="deliveries", indexed=("ownerId", "month"), partition_key="id")


class DeliveryCancelled(Exception):
    pass


class DeliveryMissing(Exception):
    pass


class DeliveryFailed(Exception):
    def __init__(self, delivery_id: str, reason: str) -> None:
        super().__init__(f"delivery {delivery_id!r} failed: {reason}")


FAILURE_FIELDS = ("failureReason", "failedAt")


def _order(version: int | None, requested_at: datetime | None, body: dict[str, Any]) -> int | None:
    """Whether a write comes after (1), with (0) or before (-1) what the document holds;
    None when that cannot be told.

    By the request's version where both have one (ingestion numbers a delivery's operations),
    else by `requestedAt` (callers that send no version)."""
    if version is not None and body.get("version") is not None:
        known_version = int(body["version"])
        return (version > known_version) - (version < known_version)
    known = body.get("requestedAt")
    if requested_at is None or known is None:
        return None
    known_at = datetime.fromisoformat(known)
    return (requested_at > known_at) - (requested_at < known_at)


def _ordered_fields(version: int | None, requested_at: datetime | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if version is not None:
        fields["version"] = version
    if requested_at is not None:
        fields["requestedAt"] = requested_at.isoformat()
    return fields


async def schedule(*, store: DocumentStore, data: DeliverySchedule) -> bool:
    """Record the scheduled delivery; True if it was new."""
    body = data.model_dump(mode="json", exclude_none=True, exclude={"rescheduled"})
    body.update(ownerId=data.owner.userId, month=data.departure.time.strftime("%Y-%m"))
    if data.rescheduled:
        body["rescheduled"] = True
    try:  # created first, updated only if it exists: a new delivery costs one call
        await store.create(data.id, body)
        return True
    except DocumentExists:
        pass

    def apply(known: dict[str, Any]) -> dict[str, Any] | None:
        if known.get("cancelled"):
            raise DeliveryCancelled(data.id)
        order = _order(data.version, data.requestedAt, known)
        if known.get("failureReason"):
            # Only a newer request revives a failed delivery; the one that failed, replayed,
            # must not (workflow would think its drone booked).
            if order is None or order <= 0:
                raise DeliveryFailed(data.id, known["failureReason"])
            known = {k: v for k, v in known.items() if k not in FAILURE_FIELDS}
        elif order is not None and order <= 0:
            return None
        return {**known, **body}

    await _update(store, data.id, apply)
    return False


REQUEST_FIELDS = {"pickup", "dropoff", "deadline", "expedited", "confirmationRequired"}


def _requested(data: DeliveryFailure | DeliveryCancellation) -> dict[str, Any]:
    """What the request at this version asked for: a failure or cancellation shows it, as a
    schedule does (a reschedule that failed shows the places it failed for)."""
    return data.model_dump(mode="json", include=REQUEST_FIELDS)


# How a scheduled delivery stands; a failure leaves none of it (its drone was freed).
TIMETABLE = ("departure", "pickupETA", "deliveryETA", "month", "packageId")


def _settled(known: dict[str, Any], *, failed: bool = False) -> dict[str, Any]:
    """The document before a failure or cancellation is written over it. "rescheduled" goes
    (it says how a scheduled delivery stands); a failure also takes the drone and timetable,
    as workflow frees the drone, so a failure reads the same whatever came before it. A
    cancellation keeps them (where the drone was when it was cancelled) but not a failure:
    it reads the same whether or not the failure was recorded first."""
    # A cancel is the last word: a failure before it is not told.
    dropped = {"rescheduled", *(TIMETABLE if failed else FAILURE_FIELDS)}
    kept = {k: v for k, v in known.items() if k not in dropped}
    return {**kept, "droneId": ""} if failed else kept


def _unscheduled(
    delivery_id: str, data: DeliveryFailure | DeliveryCancellation, state: dict[str, Any]
) -> dict[str, Any]:
    """A delivery recorded before any schedule (it failed, or was cancelled, first): enough
    of its request to answer for it in the public shape."""
    return {
        "id": delivery_id,
        "owner": {"userId": data.ownerId, "accountId": data.ownerId},
        "ownerId": data.ownerId,
        "droneId": "",  # none will carry it
        **_requested(data),
        **state,
    }


async def fail(*, store: DocumentStore, delivery_id: str, data: DeliveryFailure) -> bool:
    """Record that the delivery can never be scheduled; True if it was not known before."""
    failure: dict[str, Any] = {
        "failureReason": data.reason,
        "failedAt": _now(),
        **_ordered_fields(data.version, data.requestedAt),
    }
    if await store.get(delivery_id) is None:
        try:
            await store.create(delivery_id, _unscheduled(delivery_id, data, failure))
            return True
        except DocumentExists:
            pass

    def apply(known: dict[str, Any]) -> dict[str, Any] | None:
        if known.get("cancelled"):
            raise DeliveryCancelled(delivery_id)
        order = _order(data.version, data.requestedAt, known)
        if order is not None and order < 0:
            return None  # a newer request was recorded since the one that failed
        if known.get("failureReason") and (order is None or order == 0):
            return None  # a repeat: the first reason stands
        return {**_settled(known, failed=True), **_requested(data), **failure}

    await _update(store, delivery_id, apply)
    return False


async def record_cancellation(
    *, store: DocumentStore, delivery_id: str, data: DeliveryCancellation
) -> bool:
    """Record that the delivery was cancelled, whether or not it was ever scheduled (a cancel
    can be processed before its delivery's first message): True if it was not known. Final:
    a delivery cancelled stays cancelled, so a late schedule for it is refused."""
    cancelled = {"cancelled": True, "cancelledAt": _now()}
    ordered = _ordered_fields(data.version, data.requestedAt)
    try:
        await store.create(delivery_id, _unscheduled(delivery_id, data, {**cancelled, **ordered}))
        return True
    except DocumentExists:
        pass

    def apply(known: dict[str, Any]) -> dict[str, Any] | None:
        if known.get("cancelled"):
            return None
        return {**_settled(known), **_requested(data), **cancelled, **ordered}

    await _update(store, delivery_id, apply)
    return False


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _update(store: DocumentStore, delivery_id: str, change: Change) -> dict[str, Any]:
    """Apply `change` with optimistic concurrency; a None change leaves the document as is."""
    body = await update_with_retry(store, delivery_id, change)
    if body is None:
        raise DeliveryMissing(delivery_id)
    return body


async def reschedule(*, store: DocumentStore, delivery_id: str, data: DeliveryReschedule) -> None:
    changes = data.model_dump(mode="json", exclude_unset=True)

    def apply(body: dict[str, Any]) -> dict[str, Any] | None:
        _refuse_if_over(delivery_id, body)
        order = _order(None, data.requestedAt, body)
        if order is not None and order <= 0:
            return None
        new = {**body, **changes, "rescheduled": True}
        if data.departure is not None:
            new["month"] = data.departure.time.strftime("%Y-%m")
        return new

    await _update(store, delivery_id, apply)


def _refuse_if_over(delivery_id: str, body: dict[str, Any]) -> None:
    """A cancelled or failed delivery has no drone to move or to confirm."""
    if body.get("cancelled"):
        raise DeliveryCancelled(delivery_id)
    if body.get("failureReason"):
        raise DeliveryFailed(delivery_id, body["failureReason"])


async def cancel(*, store: DocumentStore, delivery_id: str) -> None:
    now = _now()

    def apply(body: dict[str, Any]) -> dict[str, Any] | None:
        return None if body.get("cancelled") else {**body, "cancelled": True, "cancelledAt": now}

    await _update(store, delivery_id, apply)


async def add_notify_me(*, store: DocumentStore, delivery_id: str, data: NotifyMeRequest) -> None:
    entry = data.model_dump()

    def apply(body: dict[str, Any]) -> dict[str, Any] | None:
        known = body.get("notifyMe", [])
        return None if entry in known else {**body, "notifyMe": [*known, entry]}

    await _update(store, delivery_id, apply)


async def confirm(*, store: DocumentStore, delivery_id: str, data: Confirmation) -> None:
    def apply(body: dict[str, Any]) -> dict[str, Any] | None:
        _refuse_if_over(delivery_id, body)
        return {**body, "confirmation": data.model_dump(mode="json")}

    await _update(store, delivery_id, apply)


async def status(*, store: DocumentStore, delivery_id: str) -> Status | None:
    doc = await store.get(delivery_id)
    return None if doc is None else status_of(doc.body, datetime.now(UTC))


async def summary(*, store: DocumentStore, owner_id: str, year: int, month: int) -> int:
    docs = await store.find(ownerId=owner_id, month=f"{year:04d}-{month:02d}")
    return sum(1 for d in docs if not (d.body.get("cancelled") or d.body.get("failureReason")))
