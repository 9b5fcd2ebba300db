from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from chassis.auth import Caller, PermissionNames, ReaderDep, WriterDep, auth_lifespan
from chassis.batches import Batch, BatchResults, ItemResult, item_error, merged, validated
from chassis.documents import DocumentStore
from chassis.problems import problem_responses
from contracts import access
from contracts.vocabulary import ResourceId
from delivery import service
from delivery.dependencies import StoreDep
from delivery.schemas import (
    Confirmation,
    Delivery,
    DeliveryCancellation,
    DeliveryFailure,
    DeliveryReschedule,
    DeliverySchedule,
    DeliveryStatus,
    DeliverySummary,
    NotifyMeRequest,
)

ACCESS = PermissionNames(**access.ACCESS)
router = APIRouter(prefix="/api/deliveries", tags=["deliveries"], lifespan=auth_lifespan(ACCESS))

DeliveryId = Annotated[ResourceId, Path()]


def _not_found(delivery_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no delivery {delivery_id!r}")


async def _check_owner(caller: Caller, store: DocumentStore, delivery_id: str) -> None:
    # Another owner's delivery answers 404, as a missing one does: its existence is not told.
    if caller.unrestricted or caller.admin:
        return
    doc = await store.get(delivery_id)
    if doc is None or doc.body.get("ownerId") != caller.owner_id:
        raise _not_found(delivery_id)


def _cancelled(delivery_id: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, f"delivery {delivery_id!r} was cancelled")


def _failed(e: service.DeliveryFailed) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(e))


@router.get("/summary", response_model=DeliverySummary)
async def delivery_summary(
    store: StoreDep,
    ownerId: Annotated[str, Query(min_length=1, max_length=128)],
    year: Annotated[int, Query(ge=2000, le=2200)],
    month: Annotated[int, Query(ge=1, le=12)],
) -> DeliverySummary:
    count = await service.summary(store=store, owner_id=ownerId, year=year, month=month)
    return DeliverySummary(count=count)


@router.get("/{deliveryId}", response_model=Delivery, responses=problem_responses(400, 404))
async def get_delivery(
    deliveryId: DeliveryId, store: StoreDep, caller: ReaderDep
) -> dict[str, Any]:
    doc = await store.get(deliveryId)
    if doc is None or not caller.owns(doc.body.get("ownerId", "")):
        raise _not_found(deliveryId)
    return doc.body


@router.get(
    "/{deliveryId}/status", response_model=DeliveryStatus, responses=problem_responses(400, 404)
)
async def get_delivery_status(
    deliveryId: DeliveryId, store: StoreDep, caller: ReaderDep
) -> DeliveryStatus:
    await _check_owner(caller, store, deliveryId)
    found = await service.status(store=store, delivery_id=deliveryId)
    if found is None:
        raise _not_found(deliveryId)
    return DeliveryStatus(
        stage=found.stage.value,
        lastKnownLocation=found.last_known_location,
        pickupETA=found.pickup_eta,
        deliveryETA=found.delivery_eta,
    )


@router.post("/batch", response_model=BatchResults)
async def put_deliveries(batch: Batch, store: StoreDep) -> Response:
    """Internal: each item as PUT /api/deliveries/{its id} with it as the body, the new
    ones written in one store call, each with its own answer."""
    checked = validated(DeliverySchedule, batch.items)
    schedules = [c for c in checked if isinstance(c, DeliverySchedule)]
    outcomes = await service.schedule_many(store=store, schedules=schedules)
    answered = [_scheduled(data.id, o) for data, o in zip(schedules, outcomes, strict=True)]
    return merged(checked, answered)


def _scheduled(delivery_id: str, outcome: bool | Exception) -> ItemResult:
    if isinstance(outcome, service.DeliveryCancelled):
        return item_error(_cancelled(delivery_id))
    if isinstance(outcome, service.DeliveryFailed):
        return item_error(_failed(outcome))
    if isinstance(outcome, Exception):
        return item_error(outcome)
    return ItemResult(status=201 if outcome else 204)


@router.put(
    "/{deliveryId}",
    status_code=status.HTTP_201_CREATED,
    responses={204: {"description": "it existed"}, **problem_responses(400, 409)},
)
async def put_delivery(deliveryId: DeliveryId, data: DeliverySchedule, store: StoreDep) -> Response:
    if data.id != deliveryId:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"id in the body ({data.id!r}) differs from the path"
        )
    try:
        created = await service.schedule(store=store, data=data)
    except service.DeliveryCancelled as e:
        raise _cancelled(deliveryId) from e
    except service.DeliveryFailed as e:
        raise _failed(e) from e
    return _created_or_existed(deliveryId, created)


@router.put(
    "/{deliveryId}/failure",
    status_code=status.HTTP_201_CREATED,
    responses={204: {"description": "it existed"}, **problem_responses(400, 409)},
)
async def put_delivery_failure(
    deliveryId: DeliveryId, data: DeliveryFailure, store: StoreDep
) -> Response:
    """Record that the delivery can never be scheduled (idempotent; a newer schedule clears
    it). A cancelled delivery stays cancelled: 409."""
    try:
        created = await service.fail(store=store, delivery_id=deliveryId, data=data)
    except service.DeliveryCancelled as e:
        raise _cancelled(deliveryId) from e
    return _created_or_existed(deliveryId, created)


@router.put(
    "/{deliveryId}/cancellation",
    status_code=status.HTTP_201_CREATED,
    responses={204: {"description": "it existed"}, **problem_responses(400)},
)
async def put_delivery_cancellation(
    deliveryId: DeliveryId, data: DeliveryCancellation, store: StoreDep
) -> Response:
    """Record that the delivery was cancelled, scheduled or not (idempotent, and final)."""
    created = await service.record_cancellation(store=store, delivery_id=deliveryId, data=data)
    return _created_or_existed(deliveryId, created)


def _created_or_existed(delivery_id: str, created: bool) -> Response:
    if created:
        return Response(status_code=201, headers={"Location": f"/api/deliveries/{delivery_id}"})
    return Response(status_code=204)


async def _write(deliveryId: str, action: Any) -> Response:
    try:
        await action
    except service.DeliveryMissing as e:
        raise _not_found(deliveryId) from e
    except service.DeliveryCancelled as e:
        raise _cancelled(deliveryId) from e
    except service.DeliveryFailed as e:
        raise _failed(e) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/{deliveryId}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 409),
)
async def reschedule_delivery(
    deliveryId: DeliveryId, data: DeliveryReschedule, store: StoreDep
) -> Response:
    return await _write(
        deliveryId, service.reschedule(store=store, delivery_id=deliveryId, data=data)
    )


@router.delete(
    "/{deliveryId}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(400, 404)
)
async def cancel_delivery(deliveryId: DeliveryId, store: StoreDep) -> Response:
    return await _write(deliveryId, service.cancel(store=store, delivery_id=deliveryId))


@router.post(
    "/{deliveryId}/notifymerequests",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 409),
)
async def notify_me(
    deliveryId: DeliveryId, data: NotifyMeRequest, store: StoreDep, caller: WriterDep
) -> Response:
    await _check_owner(caller, store, deliveryId)
    return await _write(
        deliveryId, service.add_notify_me(store=store, delivery_id=deliveryId, data=data)
    )


@router.post(
    "/{deliveryId}/confirmations",
    status_code=status.HTTP_200_OK,
    responses=problem_responses(400, 404, 409),
)
async def confirm_delivery(deliveryId: DeliveryId, data: Confirmation, store: StoreDep) -> Response:
    await _write(deliveryId, service.confirm(store=store, delivery_id=deliveryId, data=data))
    return Response(status_code=status.HTTP_200_OK)
