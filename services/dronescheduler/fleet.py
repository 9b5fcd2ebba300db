"""What a scheduler process knows of the fleet, and where: a hint the store verifies.

Each drone is kept as last read or written, with its ETag, and filed under the cells of a
grid of every place it can start a trip from (where it is, and every drop-off booked). A
booking looks at the cells around the pickup, ring by ring, not at every drone: a drone
whose places are all at least some miles from the pickup cannot drop off sooner than that
distance allows, so the rings stop once no drone further out could be as good.

What is kept may be behind the store: another replica may have booked, fenced or freed a
drone since. It is a hint only: a booking writes its drone on the ETag it knows, so a
drone changed meanwhile refuses the write, and is read again (and the booking planned
again). A drone freed or added elsewhere is seen at the next re-listing of the fleet
(every FLEET_RESYNC): until then it may only be passed over, never double-booked.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from chassis.documents import DocumentStore
from dronescheduler.models import (
    CRUISE_MPH,
    EARTH_RADIUS_MILES,
    EXPEDITED_MPH,
    LOADING,
    Drone,
    Location,
    Ring,
    TripRequest,
)

CELL_DEGREES = 0.02  # about 1.4 miles north to south
# Beyond this many rings the rest of the fleet is looked at in one go: a lone drone far
# away is not worth walking thousands of empty cells to.
MAX_RINGS = 64

Cell = tuple[int, int]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cell_of(place: Location) -> Cell:
    return math.floor(place.latitude / CELL_DEGREES), math.floor(place.longitude / CELL_DEGREES)


def places_of(drone: Drone) -> set[Cell]:
    """The cells of every place the drone can start a trip from."""
    return {cell_of(drone.last_location), *(cell_of(w.dropoff) for w in drone.schedule)}


def ring_miles(pickup: Location, ring: int) -> float:
    """How close to `pickup` any place in a cell `ring` cells away (or more) can be, by the
    haversine's own bounds: at least ring - 1 whole cells apart in latitude or longitude."""
    if ring <= 1:
        return 0.0
    apart = math.radians((ring - 1) * CELL_DEGREES)
    widest = min(89.9, abs(pickup.latitude) + (ring + 1) * CELL_DEGREES)
    north_south = 2 * EARTH_RADIUS_MILES * math.sin(apart / 2)
    east_west = 2 * EARTH_RADIUS_MILES * math.cos(math.radians(widest)) * math.sin(apart / 2)
    return min(north_south, east_west)


class _Least:
    """The least of a value kept per drone, as values come and go: a heap whose entries
    that no longer hold are dropped when they reach the top (and all at once when they
    outnumber the drones)."""

    def __init__(self) -> None:
        self._heap: list[tuple[Any, str]] = []
        self._value: dict[str, Any] = {}

    def set(self, drone: str, value: Any) -> None:
        self._value[drone] = value
        heapq.heappush(self._heap, (value, drone))
        if len(self._heap) > 2 * len(self._value) + 64:
            self._heap = [(v, d) for d, v in self._value.items()]
            heapq.heapify(self._heap)

    def drop(self, drone: str) -> None:
        self._value.pop(drone, None)

    def least(self) -> Any:
        while self._heap:
            value, drone = self._heap[0]
            if self._value.get(drone, _GONE) == value:
                return value
            heapq.heappop(self._heap)
        return None


_GONE = object()


class KnownFleet:
    """The drones as this process last read or wrote them, filed by cell."""

    def __init__(self, resync: timedelta) -> None:
        self._resync = resync.total_seconds()
        self._drones: dict[str, tuple[str, Drone]] = {}
        self._cells: dict[Cell, set[str]] = {}
        self._filed: dict[str, set[Cell]] = {}
        self._listed_at: float | None = None
        # Over the whole fleet: when the first drone is free of its last window, and the
        # widest gap any drone has (between windows, or before its first): a bound on how
        # soon any drone, however far from a trip, could carry it.
        self._free = _Least()
        self._narrow = _Least()  # of minus the widest gap between windows
        self._late = _Least()  # of minus the first window's departure

    def etag(self, drone: str) -> str:
        return self._drones[drone][0]

    def keep(
        self, drone: Drone, etag: str, *, new_places: Iterable[Location] | None = None
    ) -> None:
        """As written or read now. Its cells only grow until it is read whole again: a place
        it no longer flies from costs a look, never a missed drone. `new_places`: all the
        places it may start from that the drone as kept before lacked (a booking's own
        write: its one drop-off), so that a long schedule is not filed again whole."""
        self._drones[drone.id] = (etag, drone)
        last = (
            drone.schedule[-1].delivery_eta if drone.schedule else datetime.min.replace(tzinfo=UTC)
        )
        first = drone.schedule[0].departure if drone.schedule else last
        self._free.set(drone.id, last)
        self._narrow.set(drone.id, -drone.widest_gap)
        self._late.set(drone.id, -(first - _EPOCH))
        filed = self._filed.setdefault(drone.id, set())
        cells = places_of(drone) if new_places is None else set(map(cell_of, new_places))
        for cell in cells - filed:
            self._cells.setdefault(cell, set()).add(drone.id)
            filed.add(cell)

    def forget(self, drone: str) -> None:
        self._drones.pop(drone, None)
        for least in (self._free, self._narrow, self._late):
            least.drop(drone)
        for cell in self._filed.pop(drone, ()):
            self._cells[cell].discard(drone)

    async def read(self, store: DocumentStore, drone: str) -> None:
        """Read one drone again (its write was refused: it changed meanwhile)."""
        doc = await store.get(drone)
        self.forget(drone)
        if doc is not None:
            self.keep(Drone.from_json(doc.body), doc.etag)

    async def list_if_due(self, store: DocumentStore) -> None:
        """Re-list the fleet's ETags when last done longer than FLEET_RESYNC ago (or never),
        reading only the drones that changed (all in one query the first time)."""
        if self._listed_at is not None and time.monotonic() - self._listed_at < self._resync:
            return
        if not self._drones:
            for doc in await store.find():
                self.keep(Drone.from_json(doc.body), doc.etag)
        else:
            versions = await store.versions()
            for gone in set(self._drones) - set(versions):
                self.forget(gone)
            for id, etag in versions.items():
                if id not in self._drones or self._drones[id][0] != etag:
                    await self.read(store, id)
        # From when it was done, not begun: a long listing is not followed by another.
        self._listed_at = time.monotonic()

    def rings(self, trip: TripRequest, now: datetime) -> Iterator[Ring]:
        """The known drones in rings of cells outward from the pickup, each with the soonest
        one in it or further out could drop off."""
        mph = EXPEDITED_MPH if trip.expedited else CRUISE_MPH
        carry = LOADING + timedelta(hours=trip.carry_miles / mph)
        lat, lon = cell_of(trip.pickup)
        soonest_from = self._bound(trip, now, carry, mph)
        seen: set[str] = set()
        for ring in range(MAX_RINGS + 1):
            if len(seen) == len(self._drones):
                return
            found = []
            for cell in _ring_cells(lat, lon, ring):
                for id in self._cells.get(cell, ()):
                    if id not in seen:
                        seen.add(id)
                        found.append(self._drones[id][1])
            if found:
                yield soonest_from(ring_miles(trip.pickup, ring)), found
        rest = [d for id, (_, d) in self._drones.items() if id not in seen]
        if rest:
            yield soonest_from(ring_miles(trip.pickup, MAX_RINGS + 1)), rest

    def _bound(
        self, trip: TripRequest, now: datetime, carry: timedelta, mph: float
    ) -> Callable[[float], datetime]:
        """The soonest any drone whose places are all `miles` or more from the pickup could
        drop off: after its last window, or in a gap, if any gap is wide enough to fly
        that far and carry the trip."""
        first = now if trip.earliest_pickup is None else max(now, trip.earliest_pickup)
        free = max(now, self._free.least() or now)
        widest = timedelta(0)
        if (narrow := self._narrow.least()) is not None:
            widest = max(-narrow, _EPOCH - self._late.least() - now)

        def soonest(miles: float) -> datetime:
            reach = timedelta(hours=miles / mph)
            after_last = max(free + reach, first) + carry
            if widest < reach + carry:
                return after_last
            return min(after_last, max(now + reach, first) + carry)

        return soonest


def _ring_cells(lat: int, lon: int, ring: int) -> Iterator[Cell]:
    if ring == 0:
        yield lat, lon
        return
    for dlon in range(-ring, ring + 1):
        yield lat - ring, lon + dlon
        yield lat + ring, lon + dlon
    for dlat in range(-ring + 1, ring):
        yield lat + dlat, lon - ring
        yield lat + dlat, lon + ring
