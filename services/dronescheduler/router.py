from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.responses import JSONResponse

from chassis.batches import Batch, BatchResults, ItemResult, item_error, merged, validated
from chassis.documents import DocumentStore
from chassis.problems import PROBLEM_JSON, problem_body, problem_responses
from contracts.vocabulary import ResourceId, Version
from dronescheduler import service
from dronescheduler.dependencies import AssignmentsDep, DronesDep
from dronescheduler.models import Drone
from dronescheduler.schemas import DroneAssignment, DroneDeliveryRequest, DroneView, Utilization

router = APIRouter(tags=["drone deliveries"])

DeliveryId = Annotated[ResourceId, Path()]
# What the service refuses a booking with, each answered as _refusal says.
_REFUSED = (service.AssignmentCancelled, service.Superseded, service.BookingInProgress)


@router.get("/api/dronedeliveries/utilization", response_model=Utilization)
async def drone_utilization(
    assignments: AssignmentsDep,
    ownerId: Annotated[str, Query(min_length=1, max_length=128)],
    year: Annotated[int, Query(ge=2000, le=2200)],
    month: Annotated[int, Query(ge=1, le=12)],
) -> dict[str, float]:
    return await service.utilization(
        assignments=assignments, owner_id=ownerId, year=year, month=month
    )


@router.post("/api/dronedeliveries/batch", response_model=BatchResults)
async def assign_drones(batch: Batch, drones: DronesDep, assignments: AssignmentsDep) -> Response:
    """Internal: each item as PUT /api/dronedeliveries/{its deliveryId} with it as the body,
    booked concurrently as that many single calls would be, each with its own answer."""
    checked = validated(DroneDeliveryRequest, batch.items)
    requests = [c for c in checked if isinstance(c, DroneDeliveryRequest)]
    answered = await asyncio.gather(*(_assigned_item(r, drones, assignments) for r in requests))
    return merged(checked, answered)


# The routes await service.assign themselves, not through a shared coroutine: a booking's
# call chain is resumed at each of its round trips, each frame in it every time.
async def _assigned_item(
    request: DroneDeliveryRequest, drones: DocumentStore, assignments: DocumentStore
) -> ItemResult:
    try:
        body = await service.assign(drones=drones, assignments=assignments, request=request)
    except service.Unplannable as e:
        return ItemResult(status=422, body=_unplannable(e))
    except _REFUSED as e:
        return item_error(_refusal(e, request.deliveryId))
    except Exception as e:
        return item_error(e)
    # The model itself: the batch's answer is written by its serializer (chassis/batches.py).
    return ItemResult(status=200, body=DroneAssignment.model_validate(service.view(body)))


@router.put(
    "/api/dronedeliveries/{deliveryId}",
    response_model=DroneAssignment,
    responses=problem_responses(400, 409, 422, 503),
)
async def assign_drone(
    deliveryId: DeliveryId,
    request: DroneDeliveryRequest,
    drones: DronesDep,
    assignments: AssignmentsDep,
) -> Any:
    if request.deliveryId != deliveryId:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"body deliveryId {request.deliveryId!r} differs from the path's {deliveryId!r}",
        )
    try:
        body = await service.assign(drones=drones, assignments=assignments, request=request)
    except service.Unplannable as e:
        return JSONResponse(_unplannable(e), status_code=422, media_type=PROBLEM_JSON)
    except _REFUSED as e:
        raise _refusal(e, deliveryId) from e
    return service.view(body)


def _refusal(
    e: service.AssignmentCancelled | service.Superseded | service.BookingInProgress,
    delivery_id: str,
) -> HTTPException:
    """How the routes answer a booking the service refused."""
    if isinstance(e, service.AssignmentCancelled):
        return HTTPException(status.HTTP_409_CONFLICT, f"delivery {delivery_id!r} was cancelled")
    if isinstance(e, service.Superseded):
        return HTTPException(
            status.HTTP_409_CONFLICT, f"a newer request for delivery {delivery_id!r} is booking it"
        )
    return _booking_in_progress(delivery_id)


def _unplannable(e: service.Unplannable) -> dict[str, Any]:
    # The same request would fail the same way: a 4xx, so that it is not retried.
    return problem_body(
        422, "Unprocessable Content", str(e), errors=[{"field": e.field, "message": str(e)}]
    )


def _booking_in_progress(delivery_id: str) -> HTTPException:
    # Transient by nature: the caller's retry finds the booking done.
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"delivery {delivery_id!r} is being booked by another call",
        headers={"Retry-After": "1"},
    )


@router.get("/api/dronedeliveries/{deliveryId}", response_model=DroneAssignment)
async def get_assignment(deliveryId: DeliveryId, assignments: AssignmentsDep) -> dict[str, Any]:
    doc = await assignments.get(deliveryId)
    if doc is None or "window" not in doc.body:  # not booked (yet)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no drone delivery {deliveryId!r}")
    return service.view(doc.body)


@router.delete("/api/dronedeliveries/{deliveryId}", status_code=status.HTTP_204_NO_CONTENT)
async def cancel_assignment(
    deliveryId: DeliveryId,
    drones: DronesDep,
    assignments: AssignmentsDep,
    version: Annotated[Version | None, Query(description="the cancel's version")] = None,
    final: Annotated[
        bool, Query(description="false: freed as failed; a newer request may book it again")
    ] = True,
) -> Response:
    """Cancel, booked or not yet (a cancel can arrive first), for good; with final=false,
    free the drone of a delivery that failed, until a newer request books it again."""
    await service.cancel(
        drones=drones,
        assignments=assignments,
        delivery_id=deliveryId,
        version=version,
        final=final,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/drones", response_model=list[DroneView])
async def list_drones(drones: DronesDep) -> list[dict[str, Any]]:
    fleet = sorted((Drone.from_json(d.body) for d in await drones.find()), key=lambda d: d.id)
    return [drone.view() for drone in fleet]


@router.get("/api/drones/{droneId}", response_model=DroneView)
async def get_drone(droneId: Annotated[ResourceId, Path()], drones: DronesDep) -> dict[str, Any]:
    doc = await drones.get(droneId)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no drone {droneId!r}")
    return Drone.from_json(doc.body).view()
