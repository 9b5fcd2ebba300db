"""What workflow does with each message, as a decision the consumer carries out.

A message is completed when its effect is in place, retried later when something was
transiently unavailable, and dead-lettered with a reason when it can never succeed (a
delivery that can never be scheduled is also marked Failed, and its drone released).

Every message is the whole delivery request at a version (contracts/messages.py), and every
call carries that version: each service applies a version only over an older one. So a
message processed twice, late, or before an earlier one leaves every service at the latest
version, and no message waits for another: a cancel processed before its delivery's first
message leaves the delivery cancelled, and that message then books nothing.

Messages handled at about the same time share their calls (workflow/stages.py): one request
to each service's batch route carries every message's call to it, and each message gets its
own answer from it, so every branch below means per message what it meant for one alone.
Cancels, failures and releases stay single calls: they are rare.

Only internal routes are called: none needs a caller's token, whether or not the public
API requires one.

A downstream's 5xx other than "unavailable" (502, 503, 504) is not transient: the same
request would likely fail the same way. It is tried again later without holding the
message (and without counting against the downstream's circuit), and at the message's last
delivery the delivery is marked Failed with the answer as its reason.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from chassis import telemetry
from chassis.http import (
    DownstreamAnswered,
    DownstreamFailed,
    DownstreamRejected,
    DownstreamUnavailable,
    Reply,
    ServiceClient,
)
from chassis.logs import bind_log_fields
from chassis.queue import ReceivedMessage
from contracts.calls import (
    DeliveryCancellation,
    DeliveryFailure,
    DeliverySchedule,
    DroneDeliveryRequest,
    DronePlan,
    Location,
    PackageDetail,
    PackageWrite,
    UserAccount,
)
from contracts.messages import MESSAGE_TYPES, DeliveryRequested, Operation
from workflow.locations import ServiceArea, resolve
from workflow.stages import Batch, Member, Route

log = logging.getLogger(__name__)

Point = dict[str, float]
MAX_REASON = 1000  # what the delivery service keeps
# The stages of a batch (workflow/stages.py), in the order a delivery takes them.
PACKAGE, ASSIGN, RECORD = "package", "assign", "record"


@dataclass(frozen=True)
class Complete:
    note: str = ""


@dataclass(frozen=True)
class RetryLater:
    reason: str
    delay_seconds: float
    # Worth trying again while holding the message (a downstream outage); False when the
    # failure is likely to repeat, where holding would only keep others waiting.
    hold: bool = True


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    description: str


Outcome = Complete | RetryLater | DeadLetter


@dataclass(frozen=True)
class Downstreams:
    package: ServiceClient
    dronescheduler: ServiceClient
    delivery: ServiceClient

    async def aclose(self) -> None:
        for client in (self.package, self.dronescheduler, self.delivery):
            await client.aclose()


def _single_package(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fields = {k: v for k, v in body.items() if k != "packageId"}
    return f"/api/packages/{body['packageId']}", fields


def retry_delay(delivery_count: int) -> float:
    return float(min(2 ** max(delivery_count - 1, 0), 30))


@dataclass(frozen=True)
class Places:
    pickup: Point
    dropoff: Point


class DeliveryWorkflow:
    def __init__(
        self, downstreams: Downstreams, area: ServiceArea, *, max_deliveries: int = 10
    ) -> None:
        self._d = downstreams
        self._area = area
        self._max_deliveries = max_deliveries
        self._routes = {
            PACKAGE: Route(downstreams.package, "/api/packages/batch", _single_package),
            ASSIGN: Route(
                downstreams.dronescheduler,
                "/api/dronedeliveries/batch",
                lambda body: (f"/api/dronedeliveries/{body['deliveryId']}", body),
            ),
            RECORD: Route(
                downstreams.delivery,
                "/api/deliveries/batch",
                lambda body: (f"/api/deliveries/{body['id']}", body),
            ),
        }

    def batch(self) -> Batch:
        """The shared calls of a new batch of messages."""
        return Batch(self._routes)

    async def handle(self, message: ReceivedMessage, calls: Member | None = None) -> Outcome:
        """The message's outcome; its scheduling calls go through its place in a batch
        (alone in one of its own when none is given)."""
        member = calls or self.batch().join()
        try:
            return await self._handle(message, member)
        finally:
            member.done()

    async def _handle(self, message: ReceivedMessage, calls: Member) -> Outcome:
        try:
            operation = Operation(message.properties.get("operation", "delivery"))
        except ValueError:
            return DeadLetter(
                "UnknownOperation", f"operation {message.properties.get('operation')!r}"
            )
        try:
            payload = json.loads(message.body)
            request = MESSAGE_TYPES[operation].model_validate(payload)
        except (ValueError, ValidationError, RecursionError) as e:
            return DeadLetter("UndecodableBody", str(e)[:1000])
        # Every log line and span from here on names the delivery.
        bind_log_fields(deliveryId=request.deliveryId)
        telemetry.annotate(
            **{"delivery.id": request.deliveryId, "delivery.operation": operation.value}
        )
        places = Places(
            resolve(request.pickupLocation, self._area),
            resolve(request.dropOffLocation, self._area),
        )
        try:
            if operation is Operation.CANCEL:
                calls.done()  # single calls only: its batch need not wait for them
                return await self.cancel(request, places)
            return await self.schedule(
                request, places, calls, rescheduled=operation is Operation.RESCHEDULE
            )
        except DownstreamUnavailable as e:
            return RetryLater(str(e), retry_delay(message.delivery_count))
        except DownstreamFailed as e:
            if message.delivery_count < self._max_deliveries:
                return RetryLater(str(e)[:1000], retry_delay(message.delivery_count), hold=False)
            if operation is Operation.CANCEL:
                return DeadLetter("Failed", str(e)[:1000])
            return await self._give_up(request, places, "it failed every time", e, calls)
        except DownstreamRejected as e:
            return DeadLetter("Rejected", str(e)[:1000])

    async def schedule(
        self, r: DeliveryRequested, places: Places, calls: Member, *, rescheduled: bool = False
    ) -> Outcome:
        await _expect(
            await calls.call(PACKAGE, _dumped(package_write(r))), self._d.package, 201, 204
        )
        assigned = await calls.call(ASSIGN, _dumped(drone_request(r, places)))
        if assigned.status_code == 409:
            return Complete("cancelled, or a newer request holds it")
        try:
            plan = DronePlan.model_validate(
                (await _expect(assigned, self._d.dronescheduler, 200)).json()
            )
        except DownstreamRejected as e:
            return await self._give_up(r, places, "no drone could be assigned", e, calls)
        if (plan.version or 0) > r.version:
            return Complete("a newer request was booked")
        saved = await calls.call(
            RECORD, _dumped(delivery_schedule(r, places, plan, rescheduled=rescheduled))
        )
        if saved.status_code == 409:
            # Cancelled (its cancel frees the drone for good), or failed at this version.
            calls.done()
            await self._release_drone(r, final=False)
            return Complete("cancelled or failed while being scheduled")
        try:
            await _expect(saved, self._d.delivery, 201, 204)
        except DownstreamRejected as e:
            return await self._give_up(r, places, "it could not be recorded", e, calls)
        log.info(
            "delivery scheduled",
            extra={"deliveryId": r.deliveryId, "droneId": plan.droneId, "version": r.version},
        )
        return Complete()

    async def _give_up(
        self,
        r: DeliveryRequested,
        places: Places,
        what: str,
        rejected: DownstreamAnswered,
        calls: Member,
    ) -> Outcome:
        """It can never be scheduled: say why on the delivery, free its drone, and keep the
        message as evidence."""
        calls.done()  # the rest of its batch need not wait for what follows
        reason = f"{what}: {rejected.service} answered {_problem_of(rejected)}"
        evidence = str(rejected)
        # Failed before released: a retry after a failed release still finds its booking,
        # where after the release the scheduler would answer "cancelled" and the failure
        # would never be recorded.
        try:
            await self.mark_failed(r, places, reason)
        except DownstreamRejected as e:
            evidence = f"{evidence}; and the failure could not be recorded: {e}"
        await self._release_drone(r, final=False)
        log.warning("delivery failed: %s", reason, extra={"deliveryId": r.deliveryId})
        return DeadLetter("Rejected", evidence[:1000])

    async def mark_failed(self, r: DeliveryRequested, places: Places, reason: str) -> None:
        """Record on the delivery that it can never be scheduled, and why. Idempotent; a
        cancelled delivery stays cancelled. DownstreamUnavailable while the delivery service
        is out (try again later), DownstreamRejected if it refuses."""
        recorded = await self._d.delivery.request(
            "PUT",
            f"/api/deliveries/{r.deliveryId}/failure",
            json=_dumped(
                DeliveryFailure.model_construct(
                    **_unscheduled(r, places), reason=reason[:MAX_REASON]
                )
            ),
        )
        await _expect(recorded, self._d.delivery, 201, 204, 409)

    async def cancel(self, r: DeliveryRequested, places: Places) -> Outcome:
        """Free the drone, then record the cancellation: both final, both whether or not the
        delivery was ever scheduled (its first message may not have been processed yet)."""
        await self._release_drone(r)
        recorded = await self._d.delivery.request(
            "PUT",
            f"/api/deliveries/{r.deliveryId}/cancellation",
            json=_dumped(DeliveryCancellation.model_construct(**_unscheduled(r, places))),
        )
        await _expect(recorded, self._d.delivery, 201, 204)
        log.info("delivery cancelled", extra={"deliveryId": r.deliveryId})
        return Complete()

    async def _release_drone(self, r: DeliveryRequested, *, final: bool = True) -> None:
        """Free the delivery's drone: for good (a cancel), or until a newer request."""
        released = await self._d.dronescheduler.request(
            "DELETE",
            f"/api/dronedeliveries/{r.deliveryId}",
            params={"version": str(r.version), "final": "true" if final else "false"},
        )
        await _expect(released, self._d.dronescheduler, 204)


def _unscheduled(r: DeliveryRequested, places: Places) -> dict[str, Any]:
    """What the delivery service needs to answer for a delivery that was never scheduled."""
    return {
        "ownerId": r.ownerId,
        "pickup": _location(places.pickup),
        "dropoff": _location(places.dropoff),
        "deadline": r.deadline,
        "expedited": r.expedited,
        "confirmationRequired": r.confirmationRequired,
        "requestedAt": r.requestedAt,
        "version": r.version,
    }


def _location(point: Point) -> Location:
    return Location.model_construct(
        altitude=point.get("altitude", 0.0),
        latitude=point["latitude"],
        longitude=point["longitude"],
    )


def _dumped(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(mode="json")


def package_write(r: DeliveryRequested) -> PackageWrite:
    package = r.packageInfo
    return PackageWrite.model_construct(
        packageId=package.packageId,
        size=package.size,
        weight=package.weight,
        tag=package.tag,
        ownerId=r.ownerId,
        requestedAt=r.requestedAt,
    )


def drone_request(r: DeliveryRequested, places: Places) -> DroneDeliveryRequest:
    package = r.packageInfo
    return DroneDeliveryRequest.model_construct(
        deliveryId=r.deliveryId,
        ownerId=r.ownerId,
        pickup=_location(places.pickup),
        dropoff=_location(places.dropoff),
        pickupTime=r.pickupTime,
        packageDetail=PackageDetail.model_construct(id=package.packageId, size=package.size),
        expedited=r.expedited,
        requestedAt=r.requestedAt,
        version=r.version,
    )


def delivery_schedule(
    r: DeliveryRequested, places: Places, plan: DronePlan, *, rescheduled: bool
) -> DeliverySchedule:
    return DeliverySchedule.model_construct(
        id=r.deliveryId,
        owner=UserAccount.model_construct(userId=r.ownerId, accountId=r.ownerId),
        pickup=_location(places.pickup),
        dropoff=_location(places.dropoff),
        deadline=r.deadline,
        expedited=r.expedited,
        confirmationRequired=r.confirmationRequired,
        droneId=plan.droneId,
        packageId=r.packageInfo.packageId,
        departure=plan.departure,
        pickupETA=plan.pickupETA,
        deliveryETA=plan.deliveryETA,
        requestedAt=r.requestedAt,
        version=r.version,
        rescheduled=rescheduled,
    )


def _problem_of(rejected: DownstreamAnswered) -> str:
    """The status and what the service said was wrong (its problem details), in a line."""
    try:
        problem = rejected.response.json()
    except ValueError:
        problem = None
    said = rejected.response.text[:300]
    if isinstance(problem, dict):
        errors = problem.get("errors")
        fields = [
            f"{e.get('field')}: {e.get('message')}"
            for e in (errors if isinstance(errors, list) else [])
            if isinstance(e, dict)
        ]
        said = "; ".join(fields) or str(problem.get("detail") or problem.get("title") or "")
    return f"{rejected.status_code} {said}".strip()


async def _expect(response: Reply, client: ServiceClient, *statuses: int) -> Reply:
    if response.status_code in statuses:
        return response
    if response.status_code >= 500:
        raise DownstreamFailed(client.service, response)
    raise DownstreamRejected(client.service, response)
