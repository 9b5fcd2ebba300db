"""Assigning drones, idempotently and without double-booking.

The drone document is the truth about its schedule and is written with optimistic
concurrency; the assignment document records the outcome per delivery for reads and
summaries. Every step can be repeated after a crash: a drone that already holds a window
for the delivery is found again before any new one is chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from chassis.documents import (
    Collection,
    ConcurrencyConflict,
    DocumentExists,
    DocumentStore,
)
from dronescheduler.config import Settings
from dronescheduler.models import (
    Drone,
    Location,
    TripRequest,
    Window,
    best_drone,
    drone_id,
    fleet_homes,
)
from dronescheduler.schemas import DroneDeliveryRequest

DRONES = Collection(name="drones", partition_key="id")
ASSIGNMENTS = Collection(name="assignments", indexed=("ownerId", "month"), partition_key="id")
ASSIGNED, CANCELLED, BOOKING = "Assigned", "Cancelled", "Booking"
# A claim older than this belongs to a booker that died: another call may take it over.
CLAIM_STALE_AFTER = timedelta(seconds=Settings().claim_stale_after_seconds)
MAX_CONFLICTS = 50

_rng = random.Random()
# Drones by id, with the ETag they were read at. An assignment looks at the whole fleet but
# changes one drone: the fleet's ETags tell which drones changed (here or in another
# replica), and only those are read and parsed again. ETags are unique per write.
_known: dict[str, tuple[str, Drone]] = {}
_booking_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


class BookingInProgress(Exception):
    """Another call is booking this delivery right now: ask again shortly."""


class AssignmentCancelled(Exception):
    """The delivery was cancelled; a late request must not give it a drone again."""


async def ensure_fleet(*, drones: DocumentStore, size: int, base: Location) -> None:
    """Create missing drones; existing ones (and their schedules) are left alone."""
    existing = {d.id for d in await drones.find()}
    for i, home in enumerate(fleet_homes(size, base)):
        if drone_id(i) in existing:
            continue
        with contextlib.suppress(DocumentExists):  # another replica created it first
            await drones.create(drone_id(i), Drone(drone_id(i), home, home).to_json())


def _trip(request: DroneDeliveryRequest, requested_at: datetime) -> TripRequest:
    return TripRequest(
        delivery_id=request.deliveryId,
        pickup=Location(**request.pickup.model_dump()),
        dropoff=Location(**request.dropoff.model_dump()),
        expedited=request.expedited,
        earliest_pickup=request.pickupTime,
        requested_at=requested_at,
    )


def _assignment_body(
    request: DroneDeliveryRequest, drone: str, window: Window, status: str
) -> dict[str, Any]:
    return {
        "deliveryId": request.deliveryId,
        "droneId": drone,
        "status": status,
        "ownerId": request.ownerId,
        "month": window.departure.strftime("%Y-%m"),
        "request": request.model_dump(mode="json"),
        "window": window.to_json(),
    }


async def assign(
    *,
    drones: DocumentStore,
    assignments: DocumentStore,
    request: DroneDeliveryRequest,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The delivery's assignment: the existing one if this request is not newer, else a
    (re)planned one. Raises AssignmentCancelled for a cancelled delivery."""
    now = now or datetime.now(UTC)
    requested_at = request.requestedAt or now
    delivery_id = request.deliveryId
    # One booking per delivery at a time: the assignment document is claimed first (its
    # ETag decides between concurrent calls, e.g. a caller's retry after a timeout while
    # the first call still runs); the others answer "in progress" and ask again.
    taking_over = False  # only a dead booker can have left a window behind
    for attempt in range(MAX_CONFLICTS):
        # A claim is tried first, the assignment read only if there is one: a delivery
        # seen for the first time (nearly all) costs one call here.
        existing = None if attempt == 0 else await assignments.get(delivery_id)
        if existing is None:
            try:
                claim = await assignments.create(delivery_id, _claim({}, now))
                break
            except DocumentExists:
                continue
        body = existing.body
        if body["status"] == CANCELLED:
            raise AssignmentCancelled(delivery_id)
        if body["status"] == BOOKING:
            if now - datetime.fromisoformat(body["claimedAt"]) < CLAIM_STALE_AFTER:
                raise BookingInProgress(delivery_id)
            try:  # the booker died: take over (its window, if any, is found again below)
                claim = await assignments.replace(
                    delivery_id, _claim(body, now), etag=existing.etag
                )
                taking_over = True
                break
            except ConcurrencyConflict:
                continue
        known_at = datetime.fromisoformat(body["window"]["requestedAt"])
        same_request = body["request"] == request.model_dump(mode="json")
        if same_request or (request.requestedAt is not None and requested_at <= known_at):
            return body  # a repeat, or an older request arriving late
        try:  # a newer request (reschedule): claim, then free the old window
            claim = await assignments.replace(delivery_id, _claim(body, now), etag=existing.etag)
        except ConcurrencyConflict:
            continue
        await _remove_window(drones=drones, drone=body["droneId"], delivery_id=delivery_id, now=now)
        break
    else:
        raise ConcurrencyConflict(delivery_id)

    drone, window = await _reserve(
        drones=drones, trip=_trip(request, requested_at), now=now, recovering=taking_over
    )
    booked = _assignment_body(request, drone, window, ASSIGNED)
    try:
        await assignments.replace(delivery_id, booked, etag=claim.etag)
    except ConcurrencyConflict:
        # Our claim went stale and was taken over; the taker found our window and owns it.
        current = await assignments.get(delivery_id)
        assert current is not None
        return current.body
    return booked


def _claim(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**body, "status": BOOKING, "claimedAt": now.isoformat()}


async def _fleet(drones: DocumentStore) -> dict[str, tuple[Drone, str]]:
    """Every drone with its ETag, read from the store only where it changed."""
    fleet: dict[str, tuple[Drone, str]] = {}
    for id, etag in (await drones.versions()).items():
        known = _known.get(id)
        if known is None or known[0] != etag:
            doc = await drones.get(id)
            if doc is None:
                continue
            known = (doc.etag, Drone.from_json(doc.body))
            _known[id] = known
        fleet[id] = (known[1], known[0])
    return fleet


async def _save(drones: DocumentStore, drone: Drone, *, etag: str) -> None:
    """Write the drone if unchanged since read, and keep it as known: the next assignment
    need not read back what this one wrote."""
    written = await drones.replace(drone.id, drone.to_json(), etag=etag)
    _known[drone.id] = (written.etag, drone)


def _booking_turn() -> asyncio.Lock:
    """One booking at a time in this process. Concurrent bookings plan on the same fleet and
    race for the same best drones: all but one lose on the drone's ETag and plan again, which
    in one process is CPU spent for nothing (the process plans one at a time anyway).
    Between replicas the ETag still decides."""
    loop = asyncio.get_running_loop()
    turn = _booking_turns.get(loop)
    if turn is None:
        turn = _booking_turns[loop] = asyncio.Lock()
    return turn


async def _reserve(
    *, drones: DocumentStore, trip: TripRequest, now: datetime, recovering: bool
) -> tuple[str, Window]:
    async with _booking_turn():
        return await _reserve_in_turn(drones=drones, trip=trip, now=now, recovering=recovering)


async def _reserve_in_turn(
    *, drones: DocumentStore, trip: TripRequest, now: datetime, recovering: bool
) -> tuple[str, Window]:
    for _ in range(MAX_CONFLICTS):
        fleet = await _fleet(drones)
        # After a crash the window may already be on a drone: take it, do not book twice.
        for drone, etag in fleet.values() if recovering else ():
            held = drone.window_for(trip.delivery_id)
            if held is None:
                continue
            if held.requested_at == trip.requested_at:
                return drone.id, held
            # A window from an older request: drop it, then plan afresh (a conflict means
            # someone else changed the drone; the next round sees it).
            with contextlib.suppress(ConcurrencyConflict):
                await _save(drones, drone.without(trip.delivery_id, now), etag=etag)
            break
        else:
            drone, window = best_drone([d for d, _ in fleet.values()], trip, now, _rng)
            try:
                await _save(drones, drone.with_window(window, now), etag=fleet[drone.id][1])
                return drone.id, window
            except ConcurrencyConflict:
                continue  # someone booked this drone meanwhile: look again
    raise ConcurrencyConflict(f"no drone could be reserved for {trip.delivery_id}")


async def _remove_window(
    *, drones: DocumentStore, drone: str, delivery_id: str, now: datetime
) -> None:
    for _ in range(MAX_CONFLICTS):
        doc = await drones.get(drone)
        if doc is None:
            return
        current = Drone.from_json(doc.body)
        if current.window_for(delivery_id) is None:
            return
        try:
            await _save(drones, current.without(delivery_id, now), etag=doc.etag)
            return
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(f"could not free drone {drone}")


async def cancel(*, drones: DocumentStore, assignments: DocumentStore, delivery_id: str) -> bool:
    """Free the drone and mark the assignment cancelled; False if it never existed."""
    now = datetime.now(UTC)
    for _ in range(MAX_CONFLICTS):
        doc = await assignments.get(delivery_id)
        if doc is None:
            return False
        if doc.body["status"] == CANCELLED:
            return True
        if doc.body["status"] == BOOKING:
            raise BookingInProgress(delivery_id)
        await _remove_window(
            drones=drones, drone=doc.body["droneId"], delivery_id=delivery_id, now=now
        )
        try:
            await assignments.replace(delivery_id, {**doc.body, "status": CANCELLED}, etag=doc.etag)
            return True
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(delivery_id)


def view(body: dict[str, Any]) -> dict[str, Any]:
    """An assignment as the API shows it."""
    w = Window.from_json(body["window"])
    return {
        "deliveryId": body["deliveryId"],
        "droneId": body["droneId"],
        "status": body["status"],
        "ownerId": body["ownerId"],
        "departure": {"time": w.departure, "location": w.departure_location.to_json()},
        "pickupETA": w.pickup_eta,
        "deliveryETA": w.delivery_eta,
        "traveledMiles": round(w.miles, 3),
        "assignedHours": round(w.hours, 4),
        "request": body["request"],
    }


async def utilization(
    *, assignments: DocumentStore, owner_id: str, year: int, month: int
) -> dict[str, float]:
    docs = await assignments.find(ownerId=owner_id, month=f"{year:04d}-{month:02d}")
    windows = [Window.from_json(d.body["window"]) for d in docs if d.body["status"] == ASSIGNED]
    return {
        "traveledMiles": round(sum(w.miles for w in windows), 3),
        "assignedHours": round(sum(w.hours for w in windows), 4),
    }
