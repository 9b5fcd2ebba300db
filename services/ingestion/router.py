from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Request, Response, status

from chassis.auth import PermissionNames, WriterDep, auth_lifespan
from chassis.problems import problem_responses
from contracts import access
from contracts.vocabulary import ResourceId
from ingestion import service
from ingestion.dependencies import intake_of
from ingestion.schemas import (
    AcceptedDeliveryRequest,
    AcceptedReschedule,
    DeliveryRequest,
    RescheduleRequest,
)

log = logging.getLogger(__name__)
ACCESS = PermissionNames(**access.ACCESS)
router = APIRouter(
    prefix="/api/deliveryrequests", tags=["delivery requests"], lifespan=auth_lifespan(ACCESS)
)

DeliveryId = Annotated[
    ResourceId, Path(description="the id answered when the request was accepted")
]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="the same key with the same body answers the same delivery, once",
    ),
]


# What the answer to a new request repeats of it (its deliveryId is the one issued here).
ACCEPTED_FIELDS = tuple(name for name in DeliveryRequest.model_fields if name != "deliveryId")


def _queue_unavailable(exc: Exception) -> HTTPException:
    # Not acknowledged: the client retries (every operation is idempotent); say when.
    log.warning("could not accept the request: %s", exc)
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the request could not be queued and was not acknowledged; retry it later",
        headers={"Retry-After": "1"},
    )


def _unknown(delivery_id: str) -> HTTPException:
    # An id this service never issued, and another owner's, are not told apart.
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no delivery request {delivery_id!r}")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedDeliveryRequest,
    responses=problem_responses(400, 403, 422, 503),
)
async def create_delivery_request(
    request: DeliveryRequest,
    http: Request,
    response: Response,
    caller: WriterDep,
    idempotency_key: IdempotencyKey = None,
) -> AcceptedDeliveryRequest:
    if not caller.owns(request.ownerId):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "ownerId must be the caller's own owner id")
    try:
        delivery_id = await service.accept_delivery(
            intake=intake_of(http),
            request=request,
            idempotency_key=idempotency_key,
        )
    except service.IdempotencyKeyReused as e:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            "this Idempotency-Key was first used with a different request",
        ) from e
    except Exception as e:
        raise _queue_unavailable(e) from e
    response.headers["Location"] = f"/api/deliveries/{delivery_id}"
    log.info("delivery request accepted", extra={"deliveryId": delivery_id})
    # The request was validated on the way in: its fields go into the answer as they are,
    # not dumped and validated a second time.
    return AcceptedDeliveryRequest.model_construct(
        deliveryId=delivery_id,
        **{name: getattr(request, name) for name in ACCEPTED_FIELDS},
    )


@router.patch(
    "/{deliveryId}",
    response_model=AcceptedReschedule,
    response_model_exclude_unset=True,
    responses=problem_responses(400, 404, 409, 503),
)
async def reschedule_delivery_request(
    deliveryId: DeliveryId,
    request: RescheduleRequest,
    http: Request,
    caller: WriterDep,
) -> AcceptedReschedule:
    if not request.changes():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "nothing to reschedule: give pickupLocation, dropOffLocation, pickupTime or deadline",
        )
    try:
        await service.accept_reschedule(
            intake=intake_of(http),
            delivery_id=deliveryId,
            request=request,
            owns=caller.owns,
        )
    except service.UnknownDelivery as e:
        raise _unknown(deliveryId) from e
    except service.DeliveryCancelled as e:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"delivery {deliveryId!r} was cancelled: nothing to reschedule",
        ) from e
    except Exception as e:
        raise _queue_unavailable(e) from e
    log.info("reschedule accepted", extra={"deliveryId": deliveryId})
    return AcceptedReschedule(deliveryId=deliveryId, **request.model_dump(exclude_unset=True))


@router.delete(
    "/{deliveryId}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 503),
)
async def cancel_delivery_request(
    deliveryId: DeliveryId,
    http: Request,
    caller: WriterDep,
) -> Response:
    try:
        await service.accept_cancel(
            intake=intake_of(http), delivery_id=deliveryId, owns=caller.owns
        )
    except service.UnknownDelivery as e:
        raise _unknown(deliveryId) from e
    except Exception as e:
        raise _queue_unavailable(e) from e
    log.info("cancel accepted", extra={"deliveryId": deliveryId})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
