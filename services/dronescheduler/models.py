"""The scheduling rules, with no I/O: where a drone is, when it is free, what a trip takes.

A drone's schedule is a list of windows, each one delivery from departure to drop-off.
A new window goes into a gap between booked windows where it fits (with time to fly on to
the next one) or after the last, so windows never overlap: a drone is never double-booked,
and a booking far in the future does not block the drone until then. Finished windows are
pruned; the drone stays where it last dropped off. (A cancelled window leaves a gap; the
drone repositions across it, which is not planned as a trip.)
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

CRUISE_MPH = 40.0
EXPEDITED_MPH = 55.0  # expedited trips fly in the faster, battery-hungry mode
LOADING = timedelta(minutes=2)
EARTH_RADIUS_MILES = 3958.8
# Drones whose drop-off would be this close to the best are equally good: choosing among
# them at random keeps concurrent assignments from all fighting over one drone.
EQUALLY_GOOD = timedelta(seconds=60)
_NEVER = datetime.max.replace(tzinfo=UTC)


class DoubleBooking(Exception):
    """Two windows on one drone overlap: the one rule the scheduler must never break."""


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    altitude: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {"latitude": self.latitude, "longitude": self.longitude, "altitude": self.altitude}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Location:
        return cls(
            float(data["latitude"]), float(data["longitude"]), float(data.get("altitude", 0))
        )


def miles_between(a: Location, b: Location) -> float:
    """Great-circle distance (haversine): drones fly straight."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class TripRequest:
    delivery_id: str
    pickup: Location
    dropoff: Location
    expedited: bool
    earliest_pickup: datetime | None
    requested_at: datetime

    @cached_property
    def carry_miles(self) -> float:
        return miles_between(self.pickup, self.dropoff)


@dataclass(frozen=True)
class Window:
    """One delivery on one drone: from departure to drop-off."""

    delivery_id: str
    requested_at: datetime
    departure: datetime
    departure_location: Location
    pickup_eta: datetime
    delivery_eta: datetime
    dropoff: Location
    miles: float

    @property
    def hours(self) -> float:
        return (self.delivery_eta - self.departure).total_seconds() / 3600

    def to_row(self) -> list[Any]:
        """The window as the drone document keeps it: a row, not an object. The drone is
        written with its whole schedule at every booking on it, so the size of a window is
        paid on every write (JSON encoding, and the database parsing and compressing it):
        a row of numbers is about half the size. Times in whole microseconds, exactly."""
        return self._row

    @cached_property
    def _row(self) -> list[Any]:  # a window never changes once planned: encoded once
        dep, drop = self.departure_location, self.dropoff
        return [
            self.delivery_id,
            _micros(self.requested_at),
            _micros(self.departure),
            dep.latitude,
            dep.longitude,
            dep.altitude,
            _micros(self.pickup_eta),
            _micros(self.delivery_eta),
            drop.latitude,
            drop.longitude,
            drop.altitude,
            self.miles,
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> Window:
        (id, requested, departure, *dep, pickup, delivered, lat, lon, alt, miles) = row
        return cls(
            delivery_id=id,
            requested_at=_from_micros(requested),
            departure=_from_micros(departure),
            departure_location=Location(*map(float, dep)),
            pickup_eta=_from_micros(pickup),
            delivery_eta=_from_micros(delivered),
            dropoff=Location(float(lat), float(lon), float(alt)),
            miles=float(miles),
        )

    def to_json(self) -> dict[str, Any]:
        """The window with the API's field names (an assignment keeps it this way)."""
        return {
            "deliveryId": self.delivery_id,
            "requestedAt": self.requested_at.isoformat(),
            "departure": self.departure.isoformat(),
            "departureLocation": self.departure_location.to_json(),
            "pickupETA": self.pickup_eta.isoformat(),
            "deliveryETA": self.delivery_eta.isoformat(),
            "dropoff": self.dropoff.to_json(),
            "miles": self.miles,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Window:
        return cls(
            delivery_id=d["deliveryId"],
            requested_at=datetime.fromisoformat(d["requestedAt"]),
            departure=datetime.fromisoformat(d["departure"]),
            departure_location=Location.from_json(d["departureLocation"]),
            pickup_eta=datetime.fromisoformat(d["pickupETA"]),
            delivery_eta=datetime.fromisoformat(d["deliveryETA"]),
            dropoff=Location.from_json(d["dropoff"]),
            miles=float(d["miles"]),
        )


# A fence outlives any booker that could still write behind it: a booking call that has
# been paused for a day is long abandoned by its caller.
FENCE_KEPT_FOR = timedelta(days=1)


@dataclass(frozen=True)
class Drone:
    id: str
    home: Location
    last_location: Location
    schedule: tuple[Window, ...] = field(default_factory=tuple)
    # Per delivery, the claim token (and when it was set) below which bookers may no longer
    # write to this drone: set when a booking is taken over or cancelled (see service.py).
    fences: tuple[tuple[str, int, datetime], ...] = ()

    def fenced_out(self, delivery_id: str, token: int) -> bool:
        """Whether a booker holding claim `token` for the delivery has been overtaken."""
        return any(d == delivery_id and token < fence for d, fence, _ in self.fences)

    def fenced(self, delivery_id: str, token: int, now: datetime) -> Drone:
        """Without the delivery's windows, and closed to its bookers older than `token`."""
        kept = tuple(f for f in self.fences if f[0] != delivery_id and now - f[2] < FENCE_KEPT_FOR)
        return replace(self.without(delivery_id, now), fences=(*kept, (delivery_id, token, now)))

    def free_from(self, now: datetime) -> tuple[datetime, Location]:
        """When and where the drone can start its next trip."""
        if self.schedule:
            last = self.schedule[-1]
            return max(now, last.delivery_eta), last.dropoff
        return now, self.last_location

    def window_for(self, delivery_id: str) -> Window | None:
        return next((w for w in self.schedule if w.delivery_id == delivery_id), None)

    def plan(self, trip: TripRequest, now: datetime) -> Window:
        """The trip in the slot that drops off soonest: a gap between booked windows where it
        fits with time to fly on to the next one, or after the last."""
        best = self.plan_within(trip, now, None)
        assert best is not None  # the slot after the last window always fits
        return best

    def plan_within(
        self, trip: TripRequest, now: datetime, deadline: datetime | None
    ) -> Window | None:
        """As `plan`, but None when this drone cannot drop off by `deadline`: no need to
        work out a drone's slots once it is clear they all come too late."""
        mph = EXPEDITED_MPH if trip.expedited else CRUISE_MPH
        carrying = trip.carry_miles
        # No trip is shorter than loading plus the carry, and none picks up before the slot
        # starts or before its pickup time: so no slot drops off sooner than that, wherever
        # the drone is. Known before working out any flight, it passes over the gaps that
        # cannot hold the trip and stops at the slots that cannot beat the best.
        shortest = LOADING + timedelta(hours=carrying / mph)
        best: Window | None = None
        # Slots ending before the trip could even start would all be passed over: skip them.
        first = now if trip.earliest_pickup is None else max(now, trip.earliest_pickup)
        slots = self._slots
        for free_after, here, following in itertools.islice(
            slots, bisect.bisect_left(self._slot_ends, first + shortest), None
        ):
            free_at = now if free_after is None else max(now, free_after)
            start = free_at if trip.earliest_pickup is None else max(free_at, trip.earliest_pickup)
            soonest = start + shortest
            if best is not None and soonest >= best.delivery_eta:
                break  # every later slot drops off after the best one
            if deadline is not None and soonest > deadline:
                break
            if following is not None and following.departure < soonest:
                continue
            window = self._trip(trip, carrying, free_at, here, mph)
            fits = following is None or (
                window.delivery_eta + _flight(window.dropoff, following.departure_location)
                <= following.departure
            )
            if fits and (best is None or window.delivery_eta < best.delivery_eta):
                best = window
        if best is not None and deadline is not None and best.delivery_eta > deadline:
            return None
        return best

    @cached_property
    def _slots(self) -> list[tuple[datetime | None, Location, Window | None]]:
        """Where a trip could go: (free after, from where, the window it must end before),
        in time order, the last one open-ended. Gaps shorter than loading can hold no trip
        and are left out, so planning looks at the gaps, not at every booked window. (The
        first slot starts whenever planning happens: free after None.)"""
        slots: list[tuple[datetime | None, Location, Window | None]] = []
        free_after: datetime | None = None
        here = self.last_location
        for following in self.schedule:
            if free_after is None or following.departure - free_after >= LOADING:
                slots.append((free_after, here, following))
            free_after, here = following.delivery_eta, following.dropoff
        slots.append((free_after, here, None))
        return slots

    @cached_property
    def _slot_ends(self) -> list[datetime]:
        """When each slot must be over by (the next window's departure), for bisecting."""
        return [
            _NEVER if following is None else following.departure for *_, following in self._slots
        ]

    @staticmethod
    def _trip(
        trip: TripRequest, carrying: float, free_at: datetime, here: Location, mph: float
    ) -> Window:
        to_pickup = miles_between(here, trip.pickup)
        departure = free_at
        if trip.earliest_pickup is not None:
            # Leave late enough not to wait at the pickup; never before the drone is free.
            departure = max(departure, trip.earliest_pickup - timedelta(hours=to_pickup / mph))
        pickup_eta = departure + timedelta(hours=to_pickup / mph)
        delivery_eta = pickup_eta + LOADING + timedelta(hours=carrying / mph)
        return Window(
            delivery_id=trip.delivery_id,
            requested_at=trip.requested_at,
            departure=departure,
            departure_location=here,
            pickup_eta=pickup_eta,
            delivery_eta=delivery_eta,
            dropoff=trip.dropoff,
            miles=to_pickup + carrying,
        )

    def with_window(self, window: Window, now: datetime) -> Drone:
        pruned = self.pruned(now)
        schedule = tuple(sorted((*pruned.schedule, window), key=lambda w: w.departure))
        for before, after in itertools.pairwise(schedule):
            if before.delivery_eta > after.departure:
                raise DoubleBooking(f"{self.id}: {before.delivery_id} overlaps {after.delivery_id}")
        return replace(pruned, schedule=schedule)

    def without(self, delivery_id: str, now: datetime) -> Drone:
        kept = tuple(w for w in self.schedule if w.delivery_id != delivery_id)
        return replace(self, schedule=kept).pruned(now)

    def pruned(self, now: datetime) -> Drone:
        done = [w for w in self.schedule if w.delivery_eta <= now]
        if not done:
            return self
        return replace(
            self,
            last_location=done[-1].dropoff,
            schedule=tuple(w for w in self.schedule if w.delivery_eta > now),
        )

    def to_json(self) -> dict[str, Any]:
        body = {**self._where(), "schedule": [w.to_row() for w in self.schedule]}
        if self.fences:
            body["fences"] = [[d, token, _micros(at)] for d, token, at in self.fences]
        return body

    def view(self) -> dict[str, Any]:
        """The drone as the API shows it: windows with their field names, not as rows."""
        return {**self._where(), "schedule": [w.to_json() for w in self.schedule]}

    def _where(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "home": self.home.to_json(),
            "lastLocation": self.last_location.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Drone:
        return cls(
            id=d["id"],
            home=Location.from_json(d["home"]),
            last_location=Location.from_json(d["lastLocation"]),
            # Objects in documents written before windows were kept as rows.
            schedule=tuple(
                Window.from_row(w) if isinstance(w, list) else Window.from_json(w)
                for w in d["schedule"]
            ),
            fences=tuple(
                (str(d), int(token), _from_micros(at)) for d, token, at in d.get("fences", ())
            ),
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


def _from_micros(n: int) -> datetime:
    return _EPOCH + timedelta(microseconds=n)


def _flight(a: Location, b: Location) -> timedelta:
    """An empty drone repositioning between trips flies at cruise speed."""
    return timedelta(hours=miles_between(a, b) / CRUISE_MPH)


def best_drone(
    fleet: list[Drone], trip: TripRequest, now: datetime, rng: random.Random
) -> tuple[Drone, Window]:
    """The drone that would drop off soonest (one of the equally good, at random)."""
    # Drones free soonest first: the best drop-off found early rules the others out sooner
    # (a drone that cannot come within EQUALLY_GOOD of it is not planned to the end).
    options: list[tuple[Drone, Window]] = []
    best_eta: datetime | None = None
    for drone in sorted(fleet, key=lambda d: d.free_from(now)[0]):
        deadline = None if best_eta is None else best_eta + EQUALLY_GOOD
        window = drone.plan_within(trip, now, deadline)
        if window is None:
            continue
        options.append((drone, window))
        if best_eta is None or window.delivery_eta < best_eta:
            best_eta = window.delivery_eta
    assert best_eta is not None  # the first drone planned has no deadline
    good = sorted(
        (o for o in options if o[1].delivery_eta - best_eta <= EQUALLY_GOOD),
        key=lambda o: (o[1].delivery_eta, o[0].id),
    )
    return rng.choice(good)


def fleet_homes(size: int, base: Location, spacing_miles: float = 1.0) -> list[Location]:
    """Bases on a square grid centred on `base`, `spacing_miles` apart."""
    side = math.ceil(math.sqrt(size))
    dlat = spacing_miles / 69.0
    dlon = spacing_miles / (69.0 * max(math.cos(math.radians(base.latitude)), 0.01))
    offset = (side - 1) / 2
    return [
        Location(
            round(base.latitude + (i // side - offset) * dlat, 6),
            round(base.longitude + (i % side - offset) * dlon, 6),
            0.0,
        )
        for i in range(size)
    ]


def drone_id(index: int) -> str:
    return f"drone-{index + 1:03d}"
