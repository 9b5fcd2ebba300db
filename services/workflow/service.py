"""What workflow does with each message, as a decision the consumer carries out.

A message is completed when its effect is in place, retried later when something was
transiently unavailable, and dead-lettered with a reason when it can never succeed (a
delivery that can never be scheduled is also marked Failed, and its drone released). Every
call it makes is idempotent (keyed by delivery id and ordered by `requestedAt`), so a
message delivered twice has its effect once.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chassis import telemetry
from chassis.http import DownstreamRejected, DownstreamUnavailable, ServiceClient
from chassis.logs import bind_log_fields
from chassis.queue import ReceivedMessage
from contracts.messages import (
    MESSAGE_TYPES,
    CancelRequested,
    DeliveryRequested,
    Operation,
    RescheduleRequested,
)
from contracts.vocabulary import ConfirmationType
from workflow.locations import ServiceArea, resolve

log = logging.getLogger(__name__)

Point = dict[str, float]
MAX_REASON = 1000  # what the delivery service keeps


@dataclass(frozen=True)
class Complete:
    note: str = ""


@dataclass(frozen=True)
class RetryLater:
    reason: str
    delay_seconds: float
    # Worth trying again while holding the message (a downstream outage); False when it
    # waits for another message to go first, which holding would only delay.
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


class NotYetKnown(Exception):
    """The delivery this message is about has not been scheduled (yet)."""


def retry_delay(delivery_count: int) -> float:
    return float(min(2 ** max(delivery_count - 1, 0), 30))


class DeliveryWorkflow:
    def __init__(
        self, downstreams: Downstreams, area: ServiceArea, unknown_delivery_grace: float
    ) -> None:
        self._d = downstreams
        self._area = area
        self._grace = unknown_delivery_grace

    async def handle(self, message: ReceivedMessage) -> Outcome:
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
        delivery_id: str = getattr(request, "deliveryId", "")  # every message type has one
        bind_log_fields(deliveryId=delivery_id)
        telemetry.annotate(**{"delivery.id": delivery_id, "delivery.operation": operation.value})
        try:
            if isinstance(request, DeliveryRequested):
                return await self.schedule(request)
            if isinstance(request, RescheduleRequested):
                return await self.reschedule(request)
            assert isinstance(request, CancelRequested)
            return await self.cancel(request)
        except DownstreamUnavailable as e:
            return RetryLater(str(e), retry_delay(message.delivery_count))
        except NotYetKnown as e:
            if time.time() - message.enqueued_at > self._grace:
                return DeadLetter("UnknownDelivery", f"no delivery {e} after {self._grace:.0f} s")
            return RetryLater(
                f"delivery {e} not scheduled yet", retry_delay(message.delivery_count), hold=False
            )
        except DownstreamRejected as e:
            return DeadLetter("Rejected", str(e)[:1000])

    async def schedule(self, r: DeliveryRequested) -> Outcome:
        pickup = resolve(r.pickupLocation, self._area)
        dropoff = resolve(r.dropOffLocation, self._area)
        package = r.packageInfo
        await _expect(
            await self._d.package.request(
                "PUT",
                f"/api/packages/{package.packageId}",
                json={
                    "size": package.size.value,
                    "weight": package.weight,
                    "tag": package.tag,
                    "ownerId": r.ownerId,
                },
            ),
            self._d.package,
            201,
            204,
        )
        requested_at = r.requestedAt.isoformat()
        assigned = await self._d.dronescheduler.request(
            "PUT",
            f"/api/dronedeliveries/{r.deliveryId}",
            json={
                "deliveryId": r.deliveryId,
                "ownerId": r.ownerId,
                "pickup": pickup,
                "dropoff": dropoff,
                "pickupTime": r.pickupTime.isoformat(),
                "packageDetail": {"id": package.packageId, "size": package.size.value},
                "expedited": r.expedited,
                "requestedAt": requested_at,
            },
        )
        if assigned.status_code == 409:
            return Complete("cancelled before it was scheduled")
        try:
            plan = (await _expect(assigned, self._d.dronescheduler, 200)).json()
        except DownstreamRejected as e:
            return await self._give_up(r, pickup, dropoff, "no drone could be assigned", e)
        saved = await self._d.delivery.request(
            "PUT",
            f"/api/deliveries/{r.deliveryId}",
            json={
                "id": r.deliveryId,
                "owner": {"userId": r.ownerId, "accountId": r.ownerId},
                "pickup": pickup,
                "dropoff": dropoff,
                "deadline": r.deadline,
                "expedited": r.expedited,
                "confirmationRequired": r.confirmationRequired.value,
                "droneId": plan["droneId"],
                "packageId": package.packageId,
                "departure": plan["departure"],
                "pickupETA": plan["pickupETA"],
                "deliveryETA": plan["deliveryETA"],
                "requestedAt": requested_at,
            },
        )
        if saved.status_code == 409:
            await self._release_drone(r.deliveryId)
            return Complete("cancelled or failed while being scheduled")
        try:
            await _expect(saved, self._d.delivery, 201, 204)
        except DownstreamRejected as e:
            return await self._give_up(r, pickup, dropoff, "it could not be recorded", e)
        log.info(
            "delivery scheduled", extra={"deliveryId": r.deliveryId, "droneId": plan["droneId"]}
        )
        return Complete()

    async def _give_up(
        self,
        r: DeliveryRequested,
        pickup: Point,
        dropoff: Point,
        what: str,
        rejected: DownstreamRejected,
    ) -> Outcome:
        """It can never be scheduled: say why on the delivery, free its drone, and keep the
        message as evidence."""
        reason = f"{what}: {rejected.service} answered {_problem_of(rejected)}"
        evidence = str(rejected)
        # Failed before released: a retry after a failed release still finds its booking,
        # where after the release the scheduler would answer "cancelled" and the failure
        # would never be recorded.
        try:
            await self.mark_failed(
                r.deliveryId,
                r.ownerId,
                reason,
                pickup=pickup,
                dropoff=dropoff,
                deadline=r.deadline,
                expedited=r.expedited,
                confirmation_required=r.confirmationRequired,
                requested_at=r.requestedAt,
            )
        except DownstreamRejected as e:
            evidence = f"{evidence}; and the failure could not be recorded: {e}"
        await self._release_drone(r.deliveryId)
        log.warning("delivery failed: %s", reason, extra={"deliveryId": r.deliveryId})
        return DeadLetter("Rejected", evidence[:1000])

    async def mark_failed(
        self,
        delivery_id: str,
        owner_id: str,
        reason: str,
        *,
        pickup: Point,
        dropoff: Point,
        deadline: str = "",
        expedited: bool = False,
        confirmation_required: ConfirmationType = ConfirmationType.NONE,
        requested_at: datetime | None = None,
    ) -> None:
        """Record on the delivery that it can never be scheduled, and why. Idempotent; a
        cancelled delivery stays cancelled. DownstreamUnavailable while the delivery service
        is out (try again later), DownstreamRejected if it refuses."""
        recorded = await self._d.delivery.request(
            "PUT",
            f"/api/deliveries/{delivery_id}/failure",
            json={
                "ownerId": owner_id,
                "reason": reason[:MAX_REASON],
                "pickup": pickup,
                "dropoff": dropoff,
                "deadline": deadline,
                "expedited": expedited,
                "confirmationRequired": confirmation_required.value,
                "requestedAt": None if requested_at is None else requested_at.isoformat(),
            },
        )
        await _expect(recorded, self._d.delivery, 201, 204, 409)

    async def reschedule(self, r: RescheduleRequested) -> Outcome:
        current = await self._d.dronescheduler.request(
            "GET", f"/api/dronedeliveries/{r.deliveryId}"
        )
        if current.status_code == 404:
            raise NotYetKnown(r.deliveryId)
        assignment = (await _expect(current, self._d.dronescheduler, 200)).json()
        if assignment["status"] == "Cancelled":
            return Complete("cancelled; nothing to reschedule")
        trip: dict[str, Any] = dict(assignment["request"])
        changes: dict[str, Any] = {}
        if r.pickupLocation is not None:
            trip["pickup"] = changes["pickup"] = resolve(r.pickupLocation, self._area)
        if r.dropOffLocation is not None:
            trip["dropoff"] = changes["dropoff"] = resolve(r.dropOffLocation, self._area)
        if r.pickupTime is not None:
            trip["pickupTime"] = r.pickupTime.isoformat()
        if r.deadline is not None:
            changes["deadline"] = r.deadline
        trip["requestedAt"] = r.requestedAt.isoformat()
        replanned = await self._d.dronescheduler.request(
            "PUT", f"/api/dronedeliveries/{r.deliveryId}", json=trip
        )
        if replanned.status_code == 409:
            return Complete("cancelled; nothing to reschedule")
        plan = (await _expect(replanned, self._d.dronescheduler, 200)).json()
        patched = await self._d.delivery.request(
            "PATCH",
            f"/api/deliveries/{r.deliveryId}",
            json={
                **changes,
                "droneId": plan["droneId"],
                "departure": plan["departure"],
                "pickupETA": plan["pickupETA"],
                "deliveryETA": plan["deliveryETA"],
                "requestedAt": trip["requestedAt"],
            },
        )
        if patched.status_code == 404:
            raise NotYetKnown(r.deliveryId)
        if patched.status_code == 409:
            return Complete("cancelled; nothing to reschedule")
        await _expect(patched, self._d.delivery, 204)
        log.info("delivery rescheduled", extra={"deliveryId": r.deliveryId})
        return Complete()

    async def cancel(self, r: CancelRequested) -> Outcome:
        known = await self._d.delivery.request("GET", f"/api/deliveries/{r.deliveryId}")
        if known.status_code == 404:
            raise NotYetKnown(r.deliveryId)
        await _expect(known, self._d.delivery, 200)
        await self._release_drone(r.deliveryId)
        await _expect(
            await self._d.delivery.request("DELETE", f"/api/deliveries/{r.deliveryId}"),
            self._d.delivery,
            204,
        )
        log.info("delivery cancelled", extra={"deliveryId": r.deliveryId})
        return Complete()

    async def _release_drone(self, delivery_id: str) -> None:
        released = await self._d.dronescheduler.request(
            "DELETE", f"/api/dronedeliveries/{delivery_id}"
        )
        await _expect(released, self._d.dronescheduler, 204, 404)


def _problem_of(rejected: DownstreamRejected) -> str:
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


async def _expect(response: Any, client: ServiceClient, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise DownstreamRejected(client.service, response)
    return response
