"""Assigning drones: idempotently, in the order of the requests' versions, never twice.

The drone document is the truth about its schedule and is written with optimistic
concurrency; the assignment document records the outcome per delivery, and is the claim a
booking holds while it runs.

A booking plans its drone first, on what this process knows of the fleet (no store call),
and claims the assignment with that drone already named in the claim (its intent): for a
delivery seen for the first time, the claim is created so (its ETag decides between
concurrent calls), with a claim token one above the last. Then it writes the window to the
drone, then the outcome: two writes to the assignment. Should the drone refuse the window
(changed meanwhile) and the booking choose another, it names that one in the claim first,
through the claim's ETag. A re-plan (a newer request for a delivery already assigned, or a
stale claim taken over) claims the assignment first and clears what the earlier booking
wrote, and only then plans, on the drones without the window it moves; it names its drone
in a second write unless the claim names it already (the drone the delivery was booked on).

A claim left by a booker that seems dead may be taken over; the taker clears the delivery
from every drone the claim names (its intent, the drone it was booked on, and any an
earlier booking named), and fences them: the fence holds the taker's token, and a booker
with an older token may write to a fenced drone no more (its write reads the drone, so it
sees the fence, or fails on the ETag the fence changed). So a booker that was only paused,
and resumes after the takeover, can neither book a drone its claim did not name (naming it
fails on the claim's ETag) nor one it named (fenced). A cancel takes the claim the same
way, whatever state the booking is in: it is the last word on a delivery, and a late or
repeated request for it answers "cancelled".

A booking does not list the fleet: it plans on what this process knows of it (fleet.py),
the drones around the pickup ring by ring, and writes its drone on the ETag it knows; a
drone another replica changed meanwhile refuses the write and is read again. So what a
process knows is only a hint, and the store decides, as between bookers of one delivery.

Requests carry the version ingestion gave them (contracts/messages.py): an assignment is
re-planned only for a newer version, so a late, older request changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chassis.documents import (
    Collection,
    ConcurrencyConflict,
    Document,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
)
from dronescheduler.config import Settings
from dronescheduler.fleet import KnownFleet
from dronescheduler.models import (
    Drone,
    Location,
    TripRequest,
    Window,
    best_nearby,
    drone_id,
    fleet_homes,
)
from dronescheduler.schemas import DroneDeliveryRequest

DRONES = Collection(name="drones", partition_key="id")
ASSIGNMENTS = Collection(name="assignments", indexed=("ownerId", "month"), partition_key="id")
ASSIGNED, CANCELLED, BOOKING = "Assigned", "Cancelled", "Booking"
# Freed because its delivery failed: unlike a cancel, a newer request may book it again.
RELEASED = "Released"
# A claim older than this belongs to a booker that seems dead: another call may take it over
# (safe at any age: a taken-over booker is fenced out; this only keeps live ones working).
CLAIM_STALE_AFTER = timedelta(seconds=Settings().claim_stale_after_seconds)
# How far ahead a pickup can be booked: no schedule is planned further out.
PLANNING_HORIZON = timedelta(days=366)
MAX_CONFLICTS = 50

# How long a replica books on what it knows of the fleet before listing it again: a drone
# freed or added by another replica may be passed over until then, never double-booked.
FLEET_RESYNC = timedelta(seconds=Settings().fleet_resync_seconds)
# Equally good drones to choose among at random (spreading concurrent bookings): enough
# that replicas seldom race for one drone, few enough that a booking looks at a few cells.
CHOICES = 8
# Drones a booking looks at, nearest first, before it settles for the soonest of them
# (fleet.py): the cost of a booking stays that of a small fleet's, however large the fleet.
NEAREST = 40

_rng = random.Random()
# What this process knows of the fleet, per drone store (see fleet.py).
_fleets: weakref.WeakKeyDictionary[DocumentStore, KnownFleet] = weakref.WeakKeyDictionary()
_booking_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def known_fleet(drones: DocumentStore) -> KnownFleet:
    fleet = _fleets.get(drones)
    if fleet is None:
        fleet = _fleets[drones] = KnownFleet(FLEET_RESYNC)
    return fleet


def forget_fleets() -> None:
    """Start again from the store, as a fresh process does (tests and benchmarks)."""
    _fleets.clear()


class BookingInProgress(Exception):
    """Another call is booking this delivery right now: ask again shortly."""


class AssignmentCancelled(Exception):
    """The delivery was cancelled; a late request must not give it a drone again."""


class Superseded(Exception):
    """A newer request for this delivery holds the booking: this one changes nothing."""


class Unplannable(Exception):
    """No drone can ever carry this request as it is: the caller's to fix, not to retry."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


async def ensure_fleet(*, drones: DocumentStore, size: int, base: Location) -> None:
    """Create missing drones; existing ones (and their schedules) are left alone."""
    existing = {d.id for d in await drones.find()}
    for i, home in enumerate(fleet_homes(size, base)):
        if drone_id(i) in existing:
            continue
        with contextlib.suppress(DocumentExists):  # another replica created it first
            await drones.create(drone_id(i), Drone(drone_id(i), home, home).to_json())


def _trip(request: DroneDeliveryRequest, requested_at: datetime, now: datetime) -> TripRequest:
    pickup_time = request.pickupTime
    if pickup_time is not None and pickup_time - now > PLANNING_HORIZON:
        raise Unplannable(
            "pickupTime",
            f"pickupTime {pickup_time.isoformat()} is more than {PLANNING_HORIZON.days} days"
            " ahead: no drone is scheduled that far",
        )
    return TripRequest(
        delivery_id=request.deliveryId,
        pickup=Location(**request.pickup.model_dump()),
        dropoff=Location(**request.dropoff.model_dump()),
        expedited=request.expedited,
        # A pickup time already past means "as soon as possible": planned from now.
        earliest_pickup=None if pickup_time is None else max(pickup_time, now),
        requested_at=requested_at,
    )


def _version(body: dict[str, Any]) -> int:
    return int(body.get("version") or 0)


def _claim_of(body: dict[str, Any], now: datetime, **changes: Any) -> dict[str, Any]:
    return {
        **body,
        **changes,
        "status": BOOKING,
        "claimedAt": now.isoformat(),
        "token": int(body.get("token") or 0) + 1,
        "intent": None,
        # Drones earlier bookings may have written to, kept until a booking ends: a claim
        # taken over, whose taker dies before clearing them, still names them to the next.
        "dirty": sorted(_named(body)),
    }


def _named(body: dict[str, Any]) -> set[str]:
    """Every drone a booking of this delivery may have written to."""
    named = {body.get("droneId"), body.get("intent"), *body.get("dirty", ())}
    return {str(d) for d in named if d}


@dataclass
class _Claim:
    """A booking's hold on the assignment document: every write goes through its ETag. A
    delivery's first claim is made only once its drone is planned, naming it (`intend`)."""

    store: DocumentStore
    id: str
    body: dict[str, Any]
    etag: str | None = None  # None: not made yet

    @classmethod
    def held(cls, store: DocumentStore, doc: Document) -> _Claim:
        return cls(store, doc.id, doc.body, doc.etag)

    @property
    def token(self) -> int:
        return int(self.body["token"])

    async def write(self, body: dict[str, Any]) -> None:
        """ConcurrencyConflict when the claim was taken over meanwhile."""
        if self.etag is None:
            raise ValueError(f"the claim on {self.id} is not made yet")
        self._hold(await self.store.replace(self.id, body, etag=self.etag))

    async def intend(self, drone: str) -> None:
        """Name the drone before a window is written to it, unless the claim does already
        (a taker clears and fences every drone it names). DocumentExists when the first
        claim is made meanwhile by another call."""
        if self.etag is None:
            self._hold(await self.store.create(self.id, {**self.body, "intent": drone}))
        elif drone not in _named(self.body):
            await self.write({**self.body, "intent": drone})

    def _hold(self, doc: Document) -> None:
        self.body, self.etag = doc.body, doc.etag


async def assign(
    *,
    drones: DocumentStore,
    assignments: DocumentStore,
    request: DroneDeliveryRequest,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The delivery's assignment: the existing one if this request is not newer, else a
    (re)planned one. Raises AssignmentCancelled for a cancelled delivery, Superseded when a
    newer request holds it, BookingInProgress while another call books it, Unplannable when
    no drone could ever carry it."""
    now = now or datetime.now(UTC)
    requested_at = request.requestedAt or now
    trip = _trip(request, requested_at, now)
    version = request.version or 0
    asked = request.model_dump(mode="json")
    delivery_id = request.deliveryId
    for attempt in range(MAX_CONFLICTS):
        # A first request tries its claim first, and reads the assignment only if there is
        # one: for a delivery seen for the first time (nearly all) that is one call, the
        # claim's create, which _reserve makes once the drone is planned so that the claim
        # names it from its first write. A newer version reads first: its assignment is
        # there nearly always, and a claim tried would cost a plan and a refused write.
        first = attempt == 0 and version <= 1
        existing = None if first else await assignments.get(delivery_id)
        if existing is None:
            new = {"deliveryId": delivery_id, "ownerId": request.ownerId}
            claim = _Claim(
                assignments, delivery_id, _claim_of(new, now, version=version, request=asked)
            )
        else:
            body = existing.body
            if body["status"] == CANCELLED:
                raise AssignmentCancelled(delivery_id)
            if body["status"] == BOOKING:
                if now - datetime.fromisoformat(body["claimedAt"]) < CLAIM_STALE_AFTER:
                    raise BookingInProgress(delivery_id)
                if _version(body) > version:
                    raise Superseded(delivery_id)  # its own message will come back for it
            elif body["status"] == RELEASED:
                if _version(body) >= version:
                    raise Superseded(delivery_id)  # released at this version or a newer one
            elif _not_newer(body, asked, version, request.requestedAt):
                return body  # a repeat, or an older request arriving late
            try:
                claim = _Claim.held(
                    assignments,
                    await assignments.replace(
                        delivery_id,
                        _claim_of(
                            body, now, version=version, request=asked, ownerId=request.ownerId
                        ),
                        etag=existing.etag,
                    ),
                )
            except ConcurrencyConflict:
                continue
            # Whatever an earlier booking left: fenced if it may still be running. Before
            # planning, so that the plan sees the drones as the clear leaves them.
            await _clear(drones, body, claim.token, now, fence=body["status"] == BOOKING)
        try:
            drone, window = await _reserve(drones=drones, trip=trip, now=now, claim=claim)
            break
        except DocumentExists:
            continue  # the first claim, made meanwhile by another call: look at it
    else:
        raise ConcurrencyConflict(delivery_id)

    booked = {
        **claim.body,
        "status": ASSIGNED,
        "droneId": drone,
        "month": window.departure.strftime("%Y-%m"),
        "window": window.to_json(),
        "intent": None,
        "dirty": [],  # cleared, and fenced where an earlier booking may still be running
    }
    try:
        await claim.write(booked)
    except ConcurrencyConflict:
        # Taken over (or cancelled) after our window was written: the taker has cleared it.
        raise BookingInProgress(delivery_id) from None
    return booked


def _not_newer(
    body: dict[str, Any], asked: dict[str, Any], version: int, requested_at: datetime | None
) -> bool:
    """Whether the booked assignment already answers this request: the same request, or a
    newer one booked since. By version; a side from before versions, by `requestedAt`."""
    if body["request"] == asked:
        return True
    known = _version(body)
    if version and known:
        return version <= known
    window = body.get("window")
    return (
        requested_at is not None
        and window is not None
        and requested_at <= datetime.fromisoformat(window["requestedAt"])
    )


async def _save(
    drones: DocumentStore, drone: Drone, *, etag: str, booked: Window | None = None
) -> None:
    """Write the drone if unchanged since read, and keep it as known: the next assignment
    need not read back what this one wrote. `booked`: the one window this write added to
    the drone as this process knew it (on that drone's ETag), the only new place."""
    written = await drones.replace(drone.id, drone.to_json(), etag=etag)
    new_places = None if booked is None else (booked.dropoff, drone.last_location)
    # As written: a paged store names the pages it wrote (pages.py).
    known_fleet(drones).keep(drone.stored_as(written.body), written.etag, new_places=new_places)


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
    *, drones: DocumentStore, trip: TripRequest, now: datetime, claim: _Claim
) -> tuple[str, Window]:
    async with _booking_turn():
        fleet = known_fleet(drones)
        await fleet.list_if_due(drones)
        for _ in range(MAX_CONFLICTS):
            try:
                drone, window = best_nearby(
                    fleet.rings(trip, now), trip, now, _rng, CHOICES, NEAREST
                )
            except OverflowError as e:  # times beyond what a date can hold
                raise Unplannable("pickupTime", f"no schedule can hold this trip: {e}") from e
            # The ETag of the drone as planned on, taken before any await: a clear or a
            # booking meanwhile updates what the fleet knows, and writing this plan on the
            # newer ETag would undo that change.
            planned_on = fleet.etag(drone.id)
            try:
                # The first time round for a new delivery, this makes the claim.
                await claim.intend(drone.id)
            except ConcurrencyConflict:
                raise BookingInProgress(trip.delivery_id) from None  # taken over
            if drone.fenced_out(trip.delivery_id, claim.token):
                raise BookingInProgress(trip.delivery_id)
            try:
                booked = drone.with_window(window, now)
                await _save(drones, booked, etag=planned_on, booked=window)
                return drone.id, window
            except (ConcurrencyConflict, DocumentNotFound):
                # Changed (booked, fenced) or gone since this process knew it: read it again,
                # and look again.
                await fleet.read(drones, drone.id)
    raise ConcurrencyConflict(f"no drone could be reserved for {trip.delivery_id}")


async def _clear(
    drones: DocumentStore, body: dict[str, Any], token: int, now: datetime, *, fence: bool
) -> None:
    """Take the delivery off every drone an earlier booking of it may have written to: the
    one it was booked on, and the one its claim named. With `fence`, also close those
    drones to bookers with a token below `token` (the earlier booking may still be running).
    """
    delivery_id = str(body.get("deliveryId") or "")

    def cleared(d: Drone) -> Drone | None:
        if d.fenced_out(delivery_id, token):
            # Overtaken itself meanwhile (paused, then resumed): the drone is the newer
            # claim's now, its window included; lowering the fence would reopen it.
            return None
        if fence:
            return d.fenced(delivery_id, token, now)
        return d.without(delivery_id, now) if d.window_for(delivery_id) else None

    for drone in sorted(_named(body)):
        await _update_drone(drones, drone, cleared)


async def _update_drone(
    drones: DocumentStore, drone: str, change: Callable[[Drone], Drone | None]
) -> None:
    for _ in range(MAX_CONFLICTS):
        doc = await drones.get(drone)
        if doc is None:
            return
        changed = change(Drone.from_json(doc.body))
        if changed is None:
            return
        try:
            await _save(drones, changed, etag=doc.etag)
            return
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(f"could not change drone {drone}")


async def cancel(
    *,
    drones: DocumentStore,
    assignments: DocumentStore,
    delivery_id: str,
    version: int | None = None,
    final: bool = True,
) -> None:
    """Cancel the delivery: free its drone and keep it cancelled, so that no request for it,
    late or repeated, books it again. Final, and it does not wait for a booking in progress:
    it takes the claim over and fences that booking out. A cancel for a delivery never seen
    leaves the cancelled assignment behind (the cancel can be processed first).

    Not `final`: the drone is freed because the delivery failed at `version`; a newer request
    may book it again, and a booking for a newer version than that is left alone.
    """
    now = datetime.now(UTC)
    status = CANCELLED if final else RELEASED
    for _ in range(MAX_CONFLICTS):
        doc = await assignments.get(delivery_id)
        if doc is None:
            tombstone = {"deliveryId": delivery_id, "status": status, "token": 1}
            if version is not None:
                tombstone["version"] = version
            try:
                await assignments.create(delivery_id, tombstone)
                return
            except DocumentExists:
                continue
        body = doc.body
        token = int(body.get("token") or 0) + 1
        if body["status"] == CANCELLED or (body["status"] == status and not final):
            # Already so, but a crash may have come before its drones were cleared and
            # fenced (a booker paused meanwhile would still write): do it again.
            await _clear(drones, body, int(body.get("token") or 0), now, fence=True)
            return
        if not final and version is not None and _version(body) > version:
            return  # a newer request holds it now
        freed = {**body, "status": status, "token": token, "cancelledAt": now.isoformat()}
        if version is not None:
            freed["version"] = max(version, _version(body))
        try:
            await assignments.replace(delivery_id, freed, etag=doc.etag)
        except ConcurrencyConflict:
            continue
        await _clear(drones, body, token, now, fence=body["status"] == BOOKING)
        return
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
        "version": body.get("version") or None,
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
