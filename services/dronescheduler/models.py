"""The scheduling rules, with no I/O: where a drone is, when it is free, what a trip takes.

A drone's schedule is a list of windows, each one delivery from departure to drop-off.
A new window goes into a gap between booked windows where it fits (with time to fly on to
the next one) or after the last, so windows never overlap: a drone is never double-booked,
and a booking far in the future does not block the drone until then. Finished windows are
pruned; the drone stays where it last dropped off. (A cancelled window leaves a gap; the
drone repositions across it, which is not planned as a trip.)
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

CRUISE_MPH = 40.0
EXPEDITED_MPH = 55.0  # expedited trips fly in the faster, battery-hungry mode
LOADING = timedelta(minutes=2)
EARTH_RADIUS_MILES = 3958.8
# Drones whose drop-off would be this close to the best are equally good: choosing among
# them at random keeps concurrent assignments from all fighting over one drone.
EQUALLY_GOOD = timedelta(seconds=60)


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

    def to_json(self) -> dict[str, Any]:
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


@dataclass(frozen=True)
class Drone:
    id: str
    home: Location
    last_location: Location
    schedule: tuple[Window, ...] = field(default_factory=tuple)

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
        mph = EXPEDITED_MPH if trip.expedited else CRUISE_MPH
        # No trip is shorter than loading plus the carry: a gap shorter than that cannot hold
        # it, wherever the drone is, so it is passed over without working out the flights.
        shortest = LOADING + timedelta(hours=miles_between(trip.pickup, trip.dropoff) / mph)
        best: Window | None = None
        free_at, here = now, self.last_location
        for following in (*self.schedule, None):
            if best is not None and free_at >= best.delivery_eta:
                break  # every later slot starts after the best one drops off
            if following is None or following.departure - free_at >= shortest:
                window = self._trip(trip, free_at, here, mph)
                fits = following is None or (
                    window.delivery_eta + _flight(window.dropoff, following.departure_location)
                    <= following.departure
                )
                if fits and (best is None or window.delivery_eta < best.delivery_eta):
                    best = window
            if following is not None:
                free_at, here = max(free_at, following.delivery_eta), following.dropoff
        assert best is not None  # the slot after the last window always fits
        return best

    @staticmethod
    def _trip(trip: TripRequest, free_at: datetime, here: Location, mph: float) -> Window:
        to_pickup = miles_between(here, trip.pickup)
        carrying = miles_between(trip.pickup, trip.dropoff)
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
        return {
            "id": self.id,
            "home": self.home.to_json(),
            "lastLocation": self.last_location.to_json(),
            "schedule": [w.to_json() for w in self.schedule],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Drone:
        return cls(
            id=d["id"],
            home=Location.from_json(d["home"]),
            last_location=Location.from_json(d["lastLocation"]),
            schedule=tuple(Window.from_json(w) for w in d["schedule"]),
        )


def _flight(a: Location, b: Location) -> timedelta:
    """An empty drone repositioning between trips flies at cruise speed."""
    return timedelta(hours=miles_between(a, b) / CRUISE_MPH)


def best_drone(
    fleet: list[Drone], trip: TripRequest, now: datetime, rng: random.Random
) -> tuple[Drone, Window]:
    """The drone that would drop off soonest (one of the equally good, at random)."""
    options = sorted(
        ((d, d.plan(trip, now)) for d in fleet), key=lambda o: (o[1].delivery_eta, o[0].id)
    )
    best_eta = options[0][1].delivery_eta
    good = [o for o in options if o[1].delivery_eta - best_eta <= EQUALLY_GOOD]
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
