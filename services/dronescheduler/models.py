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
import math
import operator
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple

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

    @cached_property
    def mph(self) -> float:
        return EXPEDITED_MPH if self.expedited else CRUISE_MPH

    @cached_property
    def shortest(self) -> timedelta:
        """No slot takes less: loading and the carry, with no flight to the pickup."""
        return LOADING + timedelta(hours=self.carry_miles / self.mph)


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


@dataclass(frozen=True)
class _Timeline:
    """A schedule as planning searches it, kept up to date window by window rather than
    rebuilt (a long backlog costs a booking no walk over it): departures and drop-offs in
    time order, for bisecting; the windows as stored rows; a circle holding every place
    the drone flies from or to, whatever gap a trip takes (a bound on its flights); and the
    gaps between windows, in runs of GAP_RUN each with its widest gap and the box holding
    the places its gaps start and end at. Planning leaps over a run whose widest gap is
    too short for the flights to and from that box: with a long backlog nearly every gap
    is too short for a long trip, and working each one out was most of a booking's cost."""

    departures: list[datetime]
    etas: list[datetime]  # windows never overlap: in order too
    rows: list[list[Any]]
    centre: Location
    radius: float  # miles
    gaps: list[timedelta]  # gaps[j]: from window j's drop-off to window j + 1's departure
    # Every window's departure and drop-off place in turn (window j's at 2j and 2j + 1).
    latitudes: list[float]
    longitudes: list[float]
    # Each gap with the time to fly from the centre to where it starts and from where it
    # ends: a trip whose flights via the centre take longer cannot fit (the triangle
    # inequality), known with no distance worked out per gap.
    slack: list[timedelta]
    runs: list[_Run]
    starts: list[int]  # the gap each run starts at: a run grows where a window goes in

    @classmethod
    def of(cls, drone: Drone) -> _Timeline:
        s = drone.schedule
        centre = drone.last_location
        departures, etas = [w.departure for w in s], [w.delivery_eta for w in s]
        gaps = list(map(operator.sub, departures[1:], etas[:-1]))
        ends = [p for w in s for p in (w.departure_location, w.dropoff)]
        latitudes, longitudes = [p.latitude for p in ends], [p.longitude for p in ends]
        miles = [miles_between(centre, p) for p in ends]
        away = [timedelta(hours=m / CRUISE_MPH) for m in miles]
        slack = [g + away[2 * j + 1] + away[2 * j + 2] for j, g in enumerate(gaps)]
        return cls(
            departures,
            etas,
            [w.to_row() for w in s],
            centre,
            max(miles, default=0.0),
            gaps,
            latitudes,
            longitudes,
            slack,
            *_runs(gaps, slack, latitudes, longitudes),
        )

    @cached_property
    def widest_gap(self) -> timedelta:
        return max((r.widest for r in self.runs), default=timedelta(0))

    def fitting(
        self,
        slot: int,
        need: Callable[[int], timedelta],
        via_centre: timedelta,
        until: int | None = None,
        fits: Callable[[int], bool] | None = None,
    ) -> int:
        """The first slot from `slot` on (slot k: after window k - 1; 0 < slot) that is the
        last one, or whose gap is at least what `need` says a trip needs in its run (by the
        run's number) and whose slack at least what it needs flying via the centre: no
        slot in between can hold the trip. With `until`, no gap from that one on is looked
        at (slot `until` + 1 is the first returned): the caller stops there anyway, and a
        long backlog's gaps after the best drop-off found are not walked to its end. With
        `fits`, a gap that passes those tests is also passed over unless `fits` holds for it
        (by the gap's number): a closer bound, worked out only for the gaps left."""
        gaps, slack, runs, starts = self.gaps, self.slack, self.runs, self.starts
        j, end = slot - 1, len(gaps)
        if until is not None:
            end = max(min(until, end), j)  # from beyond `until`: the slot itself
        run = bisect.bisect_right(starts, j) - 1
        while j < end:
            stop = min(starts[run + 1], end) if run + 1 < len(starts) else end
            if runs[run].slackest >= via_centre:
                least = need(run)
                if runs[run].widest >= least:
                    while j < stop:
                        if (
                            slack[j] >= via_centre
                            and gaps[j] >= least
                            and (fits is None or fits(j))
                        ):
                            return j + 1
                        j += 1
            j, run = stop, run + 1
        return end + 1

    def inserted(self, at: int, w: Window) -> _Timeline:
        radius = max(
            self.radius,
            miles_between(self.centre, w.dropoff),
            miles_between(self.centre, w.departure_location),
        )
        # Copied whole and changed in place: a copy is one block of memory, where slicing
        # and joining again walks every item (and most bookings go near the front).
        departures, etas = self.departures.copy(), self.etas.copy()
        departures.insert(at, w.departure)
        etas.insert(at, w.delivery_eta)
        dep, drop = w.departure_location, w.dropoff
        latitudes, longitudes = self.latitudes.copy(), self.longitudes.copy()
        latitudes[2 * at : 2 * at] = dep.latitude, drop.latitude
        longitudes[2 * at : 2 * at] = dep.longitude, drop.longitude
        # The one gap the window went into becomes the two either side of it.
        around = range(max(at - 1, 0), min(at + 1, len(departures) - 1))
        changed = slice(max(at - 1, 0), at)
        gaps = self.gaps.copy()
        gaps[changed] = [departures[j + 1] - etas[j] for j in around]
        # The gaps either side of the window: from the centre to their ends and back.
        centre = self.centre
        slack = self.slack.copy()
        slack[changed] = [
            gaps[j]
            + _flight(centre, Location(latitudes[2 * j + 1], longitudes[2 * j + 1]))
            + _flight(centre, Location(latitudes[2 * j + 2], longitudes[2 * j + 2]))
            for j in around
        ]
        rows = self.rows.copy()
        rows.insert(at, w.to_row())
        if not self.runs:
            runs, starts = _runs(gaps, slack, latitudes, longitudes)
        else:
            # Only the run the new gap went into changes (and splits once it is too long);
            # those after it start one gap later.
            first = max(at - 1, 0)
            run = bisect.bisect_right(self.starts, first) - 1
            starts = [*self.starts[: run + 1], *(s + 1 for s in self.starts[run + 1 :])]
            stop = starts[run + 1] if run + 1 < len(starts) else len(gaps)
            new, new_starts = _runs(gaps, slack, latitudes, longitudes, starts[run], stop)
            runs = [*self.runs[:run], *new, *self.runs[run + 1 :]]
            starts = [*starts[:run], *new_starts, *starts[run + 1 :]]
        return _Timeline(
            departures,
            etas,
            rows,
            centre,
            radius,
            gaps,
            latitudes,
            longitudes,
            slack,
            runs,
            starts,
        )

    def dropped(self, done: int) -> _Timeline:
        """Without the first `done` windows (the circle still holds what is left)."""
        gaps, slack, latitudes, longitudes = (
            self.gaps[done:],
            self.slack[done:],
            self.latitudes[2 * done :],
            self.longitudes[2 * done :],
        )
        runs: list[_Run] = []
        starts: list[int] = []
        if gaps:
            # The runs of the gaps left, the first one cut short where it was cut.
            run = bisect.bisect_right(self.starts, done) - 1
            stop = self.starts[run + 1] - done if run + 1 < len(self.starts) else len(gaps)
            runs, starts = _runs(gaps, slack, latitudes, longitudes, 0, stop)
            runs += self.runs[run + 1 :]
            starts += (s - done for s in self.starts[run + 1 :])
        return _Timeline(
            self.departures[done:],
            self.etas[done:],
            self.rows[done:],
            self.centre,
            self.radius,
            gaps,
            latitudes,
            longitudes,
            slack,
            runs,
            starts,
        )


_ROUNDING = timedelta(milliseconds=1)
# Gaps per run: a run too short for a trip is passed over in one step; keeping the runs
# costs a few min and max over each at every change of the schedule.
GAP_RUN = 64


@dataclass(frozen=True)
class _Run:
    """GAP_RUN gaps in a row: the widest, and the box of the places they start and end at."""

    widest: timedelta
    slackest: timedelta
    south: float
    north: float
    west: float
    east: float

    def miles_from(self, place: Location) -> float:
        """No more than the distance from `place` to any place in the box: the haversine
        with the latitudes and longitudes as close as the box lets them be, and both
        cosines at the widest latitude (every term of it no larger, and asin(x) >= x)."""
        lat, lon = place.latitude, place.longitude
        dlat = max(self.south - lat, lat - self.north, 0.0)
        dlon = 0.0
        if not self.west <= lon <= self.east:
            dlon = min((self.west - lon) % 360, (lon - self.east) % 360)
        if not dlat and not dlon:
            return 0.0
        widest = min(90.0, max(abs(lat), abs(self.south), abs(self.north)))
        north_south = math.sin(math.radians(dlat) / 2)
        east_west = math.cos(math.radians(widest)) * math.sin(math.radians(min(dlon, 180.0)) / 2)
        return 2 * EARTH_RADIUS_MILES * math.hypot(north_south, east_west)


def _runs(
    gaps: list[timedelta],
    slack: list[timedelta],
    latitudes: list[float],
    longitudes: list[float],
    start: int = 0,
    stop: int | None = None,
) -> tuple[list[_Run], list[int]]:
    """The runs of gaps[start:stop] and the gap each starts at: GAP_RUN gaps each, but for
    the last (and for a run that only grew past GAP_RUN, not yet to twice as long)."""
    stop = len(gaps) if stop is None else stop
    if start >= stop:
        return [], []
    starts = list(range(start, stop, GAP_RUN))
    if stop - start < 2 * GAP_RUN:
        starts = starts[:1]
    runs = []
    for a, b in zip(starts, [*starts[1:], stop], strict=True):
        # Gap j starts at window j's drop-off (2j + 1), ends at window j + 1's departure.
        lats, lons = latitudes[2 * a + 1 : 2 * b + 1], longitudes[2 * a + 1 : 2 * b + 1]
        runs.append(
            _Run(max(gaps[a:b]), max(slack[a:b]), min(lats), max(lats), min(lons), max(lons))
        )
    return runs, starts


@dataclass(frozen=True)
class Page:
    """Windows of a schedule kept in a document of their own (pages.py): `count` of them,
    after the first `skip` the page document holds (those are over). No id: its windows
    changed since it was read, and it is written anew (a page document never changes)."""

    id: str | None
    count: int
    skip: int = 0


def _touched(pages: tuple[Page, ...], changes: dict[int, int]) -> tuple[Page, ...]:
    """The pages with `changes` (page index: windows gained, or lost if negative) made: a
    changed page loses its id, and an emptied one goes."""
    return tuple(
        Page(None, p.count + changes[i]) if i in changes else p
        for i, p in enumerate(pages)
        if p.count + changes.get(i, 0) > 0
    )


def _page_of(pages: tuple[Page, ...], k: int) -> int | None:
    """Which page holds window k (None: the tail, after every page)."""
    for i, p in enumerate(pages):
        if k < p.count:
            return i
        k -= p.count
    return None


class Start(NamedTuple):
    """Where planning a trip on a drone starts (Drone.start): the first slot that could
    hold it, no drop-off sooner than `soonest`, and the bounds worked out on the way."""

    slot: int
    soonest: datetime
    to_pickup: timedelta  # no flight to the pickup is shorter, nor on from the drop-off
    fly_on: timedelta
    least: timedelta  # no gap shorter holds the trip
    first: datetime  # no pickup sooner
    pickup_miles: float  # from the centre of the drone's circle
    dropoff_miles: float


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
    # The first windows of the schedule, page by page, when the schedule is long (pages.py);
    # the rest, the tail, are kept in the drone's own document.
    pages: tuple[Page, ...] = ()

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

    @property
    def widest_gap(self) -> timedelta:
        """No gap between two of this drone's windows is longer."""
        return self._timeline.widest_gap

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
        return self._plan_from(self.start(trip, now), trip, now, deadline)

    def start(self, trip: TripRequest, now: datetime) -> Start:
        """Where planning the trip on this drone starts, and no slot drops off sooner: known
        with no flight worked out, so a booking plans its likeliest drones first and passes
        over those that cannot come within EQUALLY_GOOD of the best with a few sums."""
        mph, line = trip.mph, self._timeline
        shortest = trip.shortest
        pickup_miles = miles_between(line.centre, trip.pickup)
        dropoff_miles = miles_between(line.centre, trip.dropoff)
        # No trip is shorter than loading plus the carry, none picks up before the slot
        # starts or before its pickup time, and none flies less to the pickup (or on from
        # the drop-off) than the trip's distance from the circle holding every place this
        # drone flies from or to. Known before working out any flight, these pass over the
        # gaps that cannot hold the trip and stop at the slots that cannot beat the best.
        to_pickup = timedelta(hours=max(0.0, pickup_miles - line.radius) / mph)
        fly_on = timedelta(hours=max(0.0, dropoff_miles - line.radius) / CRUISE_MPH)
        first = now if trip.earliest_pickup is None else max(now, trip.earliest_pickup)
        # No gap shorter than this can hold the trip (it would be passed over below), nor
        # one that is too short to fly to the pickup from, and on from the drop-off to, the
        # nearest of the places its run's gaps start or end at.
        least = to_pickup + shortest + fly_on
        # Gaps ending before the trip could even be over are passed over by bisecting (when
        # a slot drops off never comes sooner for a later one), and all of them when none is
        # wide enough for the trip: then only the slot after the last window is left.
        slot = bisect.bisect_left(line.departures, first + shortest)
        etas = line.etas
        if 0 < slot < len(etas) and line.widest_gap < least:
            slot = len(etas)
        free_at = max(now, etas[slot - 1]) if slot else now
        soonest = max(free_at + to_pickup, first) + shortest
        return Start(slot, soonest, to_pickup, fly_on, least, first, pickup_miles, dropoff_miles)

    def _plan_from(
        self, start: Start, trip: TripRequest, now: datetime, deadline: datetime | None
    ) -> Window | None:
        if deadline is not None and start.soonest > deadline:
            return None
        mph, line = trip.mph, self._timeline
        carrying, shortest = trip.carry_miles, trip.shortest
        to_pickup, fly_on, least, first = start.to_pickup, start.fly_on, start.least, start.first
        schedule = self.schedule
        best: Window | None = None
        # Less a millisecond: times are rounded to microseconds, and a bound must never
        # pass over a gap the trip fits into exactly.
        via_centre = (
            shortest
            + timedelta(hours=start.pickup_miles / mph + start.dropoff_miles / CRUISE_MPH)
            - _ROUNDING
        )

        # For the flat bounds on a gap's flights: seconds per mile, and the cosine at the
        # widest latitude of the pickup (or the drop-off) and of any place in the circle.
        pickup, dropoff, lats, lons = trip.pickup, trip.dropoff, line.latitudes, line.longitudes
        to_hours, on_hours = 3600 / mph, 3600 / CRUISE_MPH
        circle = abs(line.centre.latitude) + line.radius / _MILES_PER_DEGREE
        to_cos = math.cos(math.radians(min(90.0, max(abs(pickup.latitude), circle))))
        on_cos = math.cos(math.radians(min(90.0, max(abs(dropoff.latitude), circle))))
        carry_seconds = shortest.total_seconds()

        needs: dict[int, timedelta] = {}

        def need(run: int) -> timedelta:  # once per run: a plan may come back to one
            if run not in needs:
                box = line.runs[run]
                to = box.miles_from(trip.pickup) / mph + box.miles_from(trip.dropoff) / CRUISE_MPH
                needs[run] = max(least, shortest + timedelta(hours=to) - _ROUNDING)
            return needs[run]

        # The first gap whose slot drops off too late whatever fits there (the drone is free
        # no sooner than the gap starts): the search for one that fits stops at it.
        least_trip = to_pickup + shortest
        by_deadline = len(line.etas)  # no gap cut off but by the best found
        if deadline is not None:
            by_deadline = bisect.bisect_right(line.etas, deadline - least_trip)

        def cut(best: Window | None) -> int:
            if best is None:
                return by_deadline
            return min(by_deadline, bisect.bisect_left(line.etas, best.delivery_eta - least_trip))

        departures, etas = line.departures, line.etas

        def fits(gap: int) -> bool:
            """Whether the trip may fit into the gap (slot gap + 1) by the flights to the
            pickup from where the gap starts, and on from the drop-off to where it ends, no
            shorter than the flat distances allow (and a millisecond to spare): most gaps
            that pass the bounds of their run are still too short, and this tells without
            the two great circles. Worked out as `fitting` walks the gaps, not a slot at a
            time here: with a long backlog most bookings walk past a few near the pickup."""
            free_at = max(now, etas[gap])
            following = departures[gap + 1]
            if following < max(free_at + to_pickup, first) + shortest + fly_on:
                return False
            ends, room = 2 * gap + 1, (following - free_at).total_seconds()
            return (
                max(
                    _at_least_miles(lats[ends], lons[ends], pickup, to_cos) * to_hours,
                    (first - free_at).total_seconds(),
                )
                + _at_least_miles(lats[ends + 1], lons[ends + 1], dropoff, on_cos) * on_hours
                + carry_seconds
                <= room + 0.001
            )

        # Gaps too short for the trip are passed over through the timeline's widest gaps:
        # the slots skipped are those the loop would skip one by one (when a slot drops off
        # never comes sooner for a later one, so no test to stop the loop is passed over).
        k, n = start.slot - 1, len(schedule)
        while k < n:
            k += 1
            if 0 < k < n:
                if k > start.slot:
                    # The soonest any slot from here could drop off, known before looking
                    # for one that fits (the drone is free no sooner there).
                    soonest = max(max(now, line.etas[k - 1]) + to_pickup, first) + shortest
                    if (best is not None and soonest >= best.delivery_eta) or (
                        deadline is not None and soonest > deadline
                    ):
                        break
                k = line.fitting(k, need, via_centre, cut(best), fits)
            if k:
                free_after, here = schedule[k - 1].delivery_eta, schedule[k - 1].dropoff
                free_at = max(now, free_after)
            else:
                free_at, here = now, self.last_location
            soonest = max(free_at + to_pickup, first) + shortest
            if best is not None and soonest >= best.delivery_eta:
                break  # every later slot drops off after the best one
            if deadline is not None and soonest > deadline:
                break
            following = schedule[k] if k < n else None
            if following is not None:
                if following.departure < soonest + fly_on:
                    continue
                # When this gap would drop off (what _trip works out, exactly), and whether
                # the drone can fly on in time: known before the window is made.
                reach = timedelta(hours=miles_between(here, trip.pickup) / mph)
                drop = max(free_at + reach, first) + shortest
                if following.departure < drop + fly_on or (
                    best is not None and drop >= best.delivery_eta
                ):
                    continue
                if drop + _flight(trip.dropoff, following.departure_location) > following.departure:
                    continue
            window = self._trip(trip, carrying, free_at, here, mph)
            if best is None or window.delivery_eta < best.delivery_eta:
                best = window
        if best is not None and deadline is not None and best.delivery_eta > deadline:
            return None
        return best

    @cached_property
    def _timeline(self) -> _Timeline:
        return _Timeline.of(self)

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
        """With the window added where its departure puts it. The schedule it goes into has
        no overlap, so only its two neighbours can overlap it: checked, not the whole."""
        pruned = self.pruned(now)
        line, schedule = pruned._timeline, pruned.schedule
        at = bisect.bisect_right(line.departures, window.departure)
        if at and schedule[at - 1].delivery_eta > window.departure:
            raise DoubleBooking(
                f"{self.id}: {schedule[at - 1].delivery_id} overlaps {window.delivery_id}"
            )
        if at < len(schedule) and window.delivery_eta > schedule[at].departure:
            raise DoubleBooking(
                f"{self.id}: {window.delivery_id} overlaps {schedule[at].delivery_id}"
            )
        pages = pruned.pages
        page = _page_of(pages, at)
        if page is not None:
            pages = _touched(pages, {page: 1})
        booked = replace(pruned, schedule=(*schedule[:at], window, *schedule[at:]), pages=pages)
        booked.__dict__["_timeline"] = line.inserted(at, window)
        return booked

    def without(self, delivery_id: str, now: datetime) -> Drone:
        gone = [k for k, w in enumerate(self.schedule) if w.delivery_id == delivery_id]
        if not gone:
            return self.pruned(now)
        lost: dict[int, int] = {}
        for k in gone:
            page = _page_of(self.pages, k)
            if page is not None:
                lost[page] = lost.get(page, 0) - 1
        kept = tuple(w for w in self.schedule if w.delivery_id != delivery_id)
        return replace(self, schedule=kept, pages=_touched(self.pages, lost)).pruned(now)

    def stored_as(self, body: dict[str, Any]) -> Drone:
        """This drone with the pages of its document as written (pages.py names new ones)."""
        pages = _pages_of(body, self.pages)
        if pages is self.pages:
            return self
        stored = replace(self, pages=pages)
        if "_timeline" in self.__dict__:
            stored.__dict__["_timeline"] = self.__dict__["_timeline"]
        return stored

    def pruned(self, now: datetime) -> Drone:
        line = self._timeline
        done = bisect.bisect_right(line.etas, now)  # windows never overlap: ends in order too
        if not done:
            return self
        pages, over = list(self.pages), done
        while pages and over >= pages[0].count:
            over -= pages.pop(0).count
        if pages and over:
            first = pages[0]
            pages[0] = replace(first, count=first.count - over, skip=first.skip + over)
        kept = replace(
            self,
            last_location=self.schedule[done - 1].dropoff,
            schedule=self.schedule[done:],
            pages=tuple(pages),
        )
        kept.__dict__["_timeline"] = line.dropped(done)
        return kept

    def to_json(self) -> dict[str, Any]:
        """The drone's document, its whole schedule in it: pages.py stores the windows of
        its pages apart (and names the new pages), a plain store keeps it as it is."""
        body = {**self._where(), "schedule": list(self._timeline.rows)}
        if self.fences:
            body["fences"] = [[d, token, _micros(at)] for d, token, at in self.fences]
        if self.pages:
            body["pages"] = [[p.id, p.skip, p.count] for p in self.pages]
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
        if "tail" in d:
            # A drone document as pages.py stores it: only its tail is in it.
            raise ValueError(f"drone {d.get('id')}: its pages must be read with it (pages.py)")
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
            pages=_pages_of(d),
        )


def _pages_of(body: dict[str, Any], known: tuple[Page, ...] = ()) -> tuple[Page, ...]:
    """The pages the body names; those `known` already has in its place are kept as they
    are (`known` itself if it is all of them): a booking changes one page of a long
    schedule's many, and making every one again was a long backlog's cost."""
    layout = body.get("pages", ())
    if len(layout) != len(known):
        return tuple(Page(id, int(count), int(skip)) for id, skip, count in layout)
    pages = tuple(
        p if (p.id, p.skip, p.count) == (id, skip, count) else Page(id, int(count), int(skip))
        for p, (id, skip, count) in zip(known, layout, strict=True)
    )
    return known if all(map(operator.is_, pages, known)) else pages


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


def _from_micros(n: int) -> datetime:
    return _EPOCH + timedelta(microseconds=n)


# Along a meridian, the least a degree of latitude can be apart (any path that far north or
# south is at least this long), and a bound on the great circle for places this close.
_MILES_PER_DEGREE = EARTH_RADIUS_MILES * math.pi / 180
_FLAT_WITHIN = 5.0  # degrees
_FLAT_SHORT_BY = 0.9996  # the haversine over the flat distance, at least, within 5 degrees


def _at_least_miles(latitude: float, longitude: float, place: Location, cos_widest: float) -> float:
    """No more than the great-circle distance from (latitude, longitude) to `place`, with
    `cos_widest` the cosine at a latitude no nearer the equator than either: the flat
    distance with the east-west degrees as short as at that latitude (as in _Run.miles_from,
    sin(x) / x > 0.9996 for x up to 2.5 degrees, and asin(x) >= x). Further apart: 0."""
    north_south = abs(latitude - place.latitude)
    east_west = abs(longitude - place.longitude)
    if east_west > 180:
        east_west = 360 - east_west
    if north_south > _FLAT_WITHIN or east_west > _FLAT_WITHIN:
        return 0.0
    return _FLAT_SHORT_BY * _MILES_PER_DEGREE * math.hypot(north_south, cos_widest * east_west)


def _flight(a: Location, b: Location) -> timedelta:
    """An empty drone repositioning between trips flies at cruise speed."""
    return timedelta(hours=miles_between(a, b) / CRUISE_MPH)


def best_drone(
    fleet: list[Drone], trip: TripRequest, now: datetime, rng: random.Random
) -> tuple[Drone, Window]:
    """The drone that would drop off soonest (one of the equally good, at random)."""
    return best_nearby([(None, fleet)], trip, now, rng)


Ring = tuple[datetime | None, Iterable[Drone]]


def best_nearby(
    rings: Iterable[Ring],
    trip: TripRequest,
    now: datetime,
    rng: random.Random,
    choices: int | None = None,
    enough: int | None = None,
) -> tuple[Drone, Window]:
    """As `best_drone`, over drones in rings outward from the pickup, each with the soonest
    any drone in it or further out could drop off (None: unknown). The rings stop once none
    further out could be as good, or (with `choices`) once that many equally good drones
    are found and none further out could be better: a large fleet is not planned whole.
    With `enough`, the rings also stop once that many drones have been looked at and one
    can carry the trip: the soonest of the nearest, not of a whole crowded city (where
    every drone within a trip's reach might, just, fit it into a gap)."""
    # Drones that could drop off soonest first: the best drop-off found early rules the
    # others out sooner (a drone that cannot come within EQUALLY_GOOD of it is passed over
    # on its bound alone, or not planned to the end). The order changes what is worked out,
    # never what is chosen: every drone within EQUALLY_GOOD of the best is planned in full.
    options: list[tuple[Drone, Window]] = []
    best_eta: datetime | None = None
    looked = 0
    for soonest, ring in rings:
        if best_eta is not None and enough is not None and looked >= enough:
            break
        if best_eta is not None and soonest is not None:
            if soonest - best_eta > EQUALLY_GOOD:
                break
            if choices is not None and soonest >= best_eta:
                found = sum(w.delivery_eta - best_eta <= EQUALLY_GOOD for _, w in options)
                if found >= choices:
                    break
        starts = [(drone.start(trip, now), drone) for drone in ring]
        looked += len(starts)
        for start, drone in sorted(starts, key=_soonest):
            deadline = None if best_eta is None else best_eta + EQUALLY_GOOD
            if deadline is not None and start.soonest > deadline:
                break  # and so are all the drones after it
            window = drone._plan_from(start, trip, now, deadline)
            if window is None:
                continue
            options.append((drone, window))
            if best_eta is None or window.delivery_eta < best_eta:
                best_eta = window.delivery_eta
    if best_eta is None:
        raise LookupError("no drone in the fleet")
    good = sorted(
        (o for o in options if o[1].delivery_eta - best_eta <= EQUALLY_GOOD),
        key=lambda o: (o[1].delivery_eta, o[0].id),
    )
    return rng.choice(good)


def _soonest(start: tuple[Start, Drone]) -> datetime:
    return start[0].soonest


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
