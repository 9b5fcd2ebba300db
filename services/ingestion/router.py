from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from contracts.vocabulary import ResourceId
from ingestion import service
from ingestion.dependencies import QueueDep
from ingestion.schemas import (
    AcceptedDeliveryRequest,
    AcceptedReschedule,
    DeliveryRequest,
    RescheduleRequest,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/deliveryrequests", tags=["delivery requests"])

DeliveryId = Annotated[
    ResourceId, Path(description="the id answered when the request was accepted")
]


def _queue_unavailable(exc: Exception) -> HTTPException:
    # Nothing was accepted, so the client can safely retry; say when.
    log.warning("queue send failed: %s", exc)
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the request could not be queued; nothing was accepted, retry later",
        headers={"Retry-After": "1"},
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=AcceptedDeliveryRequest)
async def create_delivery_request(
    request: DeliveryRequest, queue: QueueDep, response: Response
) -> AcceptedDeliveryRequest:
    try:
        delivery_id = await service.accept_delivery(queue=queue, request=request)
    except Exception as e:
        raise _queue_unavailable(e) from e
    response.headers["Location"] = f"/api/deliveries/{delivery_id}"
    log.info("delivery request accepted", extra={"deliveryId": delivery_id})
    return AcceptedDeliveryRequest(deliveryId=delivery_id, **request.model_dump())


@router.patch("/{deliveryId}", response_model=AcceptedReschedule, response_model_exclude_unset=True)
async def reschedule_delivery_request(
    deliveryId: DeliveryId, request: RescheduleRequest, queue: QueueDep
) -> AcceptedReschedule:
    if not request.model_fields_set:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "nothing to reschedule: give pickupLocation, dropOffLocation, pickupTime or deadline",
        )
    try:
        await service.accept_reschedule(queue=queue, delivery_id=deliveryId, request=request)
    except Exception as e:
        raise _queue_unavailable(e) from e
    log.info("reschedule accepted", extra={"deliveryId": deliveryId})
    return AcceptedReschedule(deliveryId=deliveryId, **request.model_dump(exclude_unset=True))


@router.delete("/{deliveryId}", status_code=status.HTTP_204_NO_CONTENT)
async def cancel_delivery_request(deliveryId: DeliveryId, queue: QueueDep) -> Response:
    try:
        await service.accept_cancel(queue=queue, delivery_id=deliveryId)
    except Exception as e:
        raise _queue_unavailable(e) from e
    log.info("cancel accepted", extra={"deliveryId": deliveryId})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
