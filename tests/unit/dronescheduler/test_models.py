"""The drone scheduler's rules: distances, trip plans, windows that never overlap, choosing
a drone, the fleet's bases, and the JSON a drone is stored as."""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dronescheduler.models import (
    CRUISE_MPH,
    EARTH_RADIUS_MILES,
    EQUALLY_GOOD,
    EXPEDITED_MPH,
    GAP_RUN,
    LOADING,
    DoubleBooking,
    Drone,
    Location,
    TripRequest,
    Window,
    _at_least_miles,
    _runs,
    _Timeline,
    best_drone,
    drone_id,
    fleet_homes,
    miles_between,
)

NOW = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
# Along a meridian the great-circle distance is the earth's radius times the angle.
MILES_PER_DEGREE = EARTH_RADIUS_MILES * math.pi / 180
SEATTLE = Location(47.6062, -122.3321)
PORTLAND = Location(45.5152, -122.6784)
HOME = Location(47.0, -122.0)


def north_of(place: Location, miles: float) -> Location:
    return Location(place.latitude + miles / MILES_PER_DEGREE, place.longitude)


def trip(
    pickup: Location,
    dropoff: Location,
    *,
    delivery_id: str = "d1",
    expedited: bool = False,
    earliest_pickup: datetime | None = None,
) -> TripRequest:
    return TripRequest(
        delivery_id=delivery_id,
        pickup=pickup,
        dropoff=dropoff,
        expedited=expedited,
        earliest_pickup=earliest_pickup,
        requested_at=NOW,
    )


def idle_drone(at: Location = HOME, name: str = "drone-001") -> Drone:
    return Drone(name, at, at)


def minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def window(
    delivery_id: str, departure: datetime, delivery_eta: datetime, dropoff: Location
) -> Window:
    return Window(
        delivery_id=delivery_id,
        requested_at=NOW - timedelta(hours=3),
        departure=departure,
        departure_location=HOME,
        pickup_eta=departure + (delivery_eta - departure) / 2,
        delivery_eta=delivery_eta,
        dropoff=dropoff,
        miles=5.0,
    )


# --- distances -------------------------------------------------------------------------


def test_seattle_to_portland_is_about_145_miles_as_the_drone_flies() -> None:
    assert miles_between(SEATTLE, PORTLAND) == pytest.approx(145.4, abs=0.5)


def test_one_degree_of_longitude_on_the_equator_is_about_69_miles() -> None:
    assert miles_between(Location(0, 0), Location(0, 1)) == pytest.approx(69.09, abs=0.01)


def test_the_antipode_is_half_way_round_the_earth() -> None:
    assert miles_between(Location(0, 0), Location(0, 180)) == pytest.approx(
        math.pi * EARTH_RADIUS_MILES, rel=1e-9
    )


def test_a_place_is_zero_miles_from_itself() -> None:
    assert miles_between(SEATTLE, SEATTLE) == 0.0


def test_distance_is_the_same_both_ways() -> None:
    places = [SEATTLE, PORTLAND, HOME, Location(-33.9, 151.2), Location(51.5, -0.1)]
    for a in places:
        for b in places:
            assert miles_between(a, b) == pytest.approx(miles_between(b, a), abs=1e-9)


def test_altitude_does_not_change_the_ground_distance() -> None:
    high = Location(PORTLAND.latitude, PORTLAND.longitude, 400.0)
    assert miles_between(SEATTLE, high) == miles_between(SEATTLE, PORTLAND)


# --- one trip --------------------------------------------------------------------------


def test_an_idle_drone_departs_now_and_flies_at_cruise_speed() -> None:
    pickup = north_of(HOME, 10)
    dropoff = north_of(pickup, 20)
    w = idle_drone().plan(trip(pickup, dropoff), NOW)
    assert w.departure == NOW
    assert w.departure_location == HOME
    # 10 miles at 40 mph, then loading, then 20 miles at 40 mph.
    assert minutes(w.pickup_eta - NOW) == pytest.approx(15.0, abs=1e-6)
    assert minutes(w.delivery_eta - NOW) == pytest.approx(15.0 + 2.0 + 30.0, abs=1e-6)
    assert w.miles == pytest.approx(30.0, abs=1e-6)
    assert w.dropoff == dropoff
    assert w.hours == pytest.approx(47 / 60, abs=1e-9)


def test_an_expedited_trip_flies_faster() -> None:
    pickup = north_of(HOME, 10)
    dropoff = north_of(pickup, 20)
    normal = idle_drone().plan(trip(pickup, dropoff), NOW)
    fast = idle_drone().plan(trip(pickup, dropoff, expedited=True), NOW)
    assert minutes(fast.pickup_eta - NOW) == pytest.approx(10 / EXPEDITED_MPH * 60, abs=1e-6)
    assert minutes(fast.delivery_eta - NOW) == pytest.approx(30 / EXPEDITED_MPH * 60 + 2, abs=1e-6)
    assert fast.delivery_eta < normal.delivery_eta
    assert fast.miles == pytest.approx(normal.miles)
    assert EXPEDITED_MPH > CRUISE_MPH


def test_loading_takes_two_minutes_even_when_nothing_is_flown() -> None:
    w = idle_drone().plan(trip(HOME, HOME), NOW)
    assert w.pickup_eta == NOW
    assert w.delivery_eta - w.pickup_eta == LOADING == timedelta(minutes=2)
    assert w.miles == 0.0


def test_a_busy_drone_departs_from_its_last_dropoff_when_it_is_free() -> None:
    busy_until = NOW + timedelta(hours=1)
    last_dropoff = north_of(HOME, 3)
    drone = Drone("drone-001", HOME, HOME, (window("earlier", NOW, busy_until, last_dropoff),))
    pickup = north_of(last_dropoff, 4)
    w = drone.plan(trip(pickup, north_of(pickup, 4)), NOW)
    assert w.departure == busy_until
    assert w.departure_location == last_dropoff
    assert minutes(w.pickup_eta - busy_until) == pytest.approx(6.0, abs=1e-6)


def test_a_drone_whose_last_trip_is_over_departs_now() -> None:
    over = NOW - timedelta(minutes=5)
    drone = Drone(
        "drone-001", HOME, HOME, (window("earlier", NOW - timedelta(hours=1), over, HOME),)
    )
    assert drone.plan(trip(north_of(HOME, 1), north_of(HOME, 2)), NOW).departure == NOW


def test_the_drone_leaves_just_in_time_for_a_later_pickup() -> None:
    pickup_time = NOW + timedelta(hours=2)
    pickup = north_of(HOME, 10)
    w = idle_drone().plan(trip(pickup, north_of(pickup, 5), earliest_pickup=pickup_time), NOW)
    assert w.departure == pickup_time - timedelta(minutes=15)
    assert w.pickup_eta == pickup_time


def test_a_pickup_time_in_the_past_does_not_delay_departure() -> None:
    pickup = north_of(HOME, 10)
    w = idle_drone().plan(
        trip(pickup, north_of(pickup, 5), earliest_pickup=NOW - timedelta(days=1)), NOW
    )
    assert w.departure == NOW


def test_a_pickup_time_before_the_drone_is_free_waits_for_the_drone() -> None:
    busy_until = NOW + timedelta(hours=1)
    drone = Drone("drone-001", HOME, HOME, (window("earlier", NOW, busy_until, HOME),))
    pickup = north_of(HOME, 10)
    w = drone.plan(
        trip(pickup, north_of(pickup, 5), earliest_pickup=NOW + timedelta(minutes=30)), NOW
    )
    assert w.departure == busy_until
    assert w.pickup_eta == busy_until + timedelta(minutes=15)


def test_etas_are_in_order_for_any_trip() -> None:
    rng = random.Random(7)
    for _ in range(200):
        here = Location(rng.uniform(47, 48), rng.uniform(-123, -122))
        pickup = Location(rng.uniform(47, 48), rng.uniform(-123, -122))
        dropoff = Location(rng.uniform(47, 48), rng.uniform(-123, -122))
        later = NOW + timedelta(minutes=rng.uniform(-60, 180))
        w = idle_drone(here).plan(
            trip(pickup, dropoff, expedited=rng.random() < 0.5, earliest_pickup=later), NOW
        )
        assert NOW <= w.departure <= w.pickup_eta < w.delivery_eta
        assert w.delivery_eta - w.pickup_eta >= LOADING
        assert w.pickup_eta >= later  # never early for the pickup
        if w.departure > NOW:  # it waited: then it arrives just as the pickup is ready
            assert w.pickup_eta == later


# --- a schedule of windows -------------------------------------------------------------


def test_windows_are_appended_one_after_another_without_overlap() -> None:
    drone = idle_drone()
    rng = random.Random(3)
    for i in range(8):
        pickup = north_of(HOME, rng.uniform(0, 5))
        t = trip(pickup, north_of(pickup, rng.uniform(0, 5)), delivery_id=f"d{i}")
        drone = drone.with_window(drone.plan(t, NOW), NOW)
    assert [w.delivery_id for w in drone.schedule] == [f"d{i}" for i in range(8)]
    for before, after in zip(drone.schedule, drone.schedule[1:], strict=False):
        assert after.departure >= before.delivery_eta
        assert after.departure_location == before.dropoff


def test_a_window_overlapping_the_last_one_is_refused() -> None:
    drone = idle_drone()
    first = drone.plan(trip(HOME, north_of(HOME, 10), delivery_id="a"), NOW)
    drone = drone.with_window(first, NOW)
    # Planned against the idle drone, so it departs before the first window ends.
    clash = idle_drone().plan(trip(HOME, north_of(HOME, 1), delivery_id="b"), NOW)
    assert clash.departure < first.delivery_eta
    with pytest.raises(DoubleBooking):
        drone.with_window(clash, NOW)


def test_adding_a_window_drops_the_finished_ones() -> None:
    done_at = north_of(HOME, 2)
    drone = Drone(
        "drone-001",
        HOME,
        HOME,
        (window("old", NOW - timedelta(hours=2), NOW - timedelta(hours=1), done_at),),
    )
    new = drone.plan(trip(done_at, north_of(done_at, 1), delivery_id="new"), NOW)
    after = drone.with_window(new, NOW)
    assert [w.delivery_id for w in after.schedule] == ["new"]
    assert after.last_location == done_at


def test_without_frees_the_window() -> None:
    drone = idle_drone()
    for name in ("a", "b", "c"):
        drone = drone.with_window(
            drone.plan(trip(HOME, north_of(HOME, 5), delivery_id=name), NOW), NOW
        )
    freed = drone.without("c", NOW)
    assert [w.delivery_id for w in freed.schedule] == ["a", "b"]
    assert freed.window_for("c") is None
    assert freed.window_for("b") == drone.window_for("b")
    # The drone is free again as soon as "b" is dropped off.
    assert freed.free_from(NOW)[0] == drone.window_for("b").delivery_eta  # type: ignore[union-attr]


def test_without_the_only_window_makes_the_drone_free_now() -> None:
    drone = idle_drone()
    drone = drone.with_window(drone.plan(trip(HOME, north_of(HOME, 5)), NOW), NOW)
    assert drone.free_from(NOW)[0] > NOW
    assert drone.without("d1", NOW).free_from(NOW) == (NOW, HOME)


def test_without_an_unknown_delivery_changes_nothing() -> None:
    drone = idle_drone()
    drone = drone.with_window(drone.plan(trip(HOME, north_of(HOME, 5)), NOW), NOW)
    assert drone.without("someone-else", NOW) == drone


def test_pruning_moves_the_drone_to_its_last_finished_dropoff() -> None:
    a, b, c = north_of(HOME, 1), north_of(HOME, 2), north_of(HOME, 3)
    drone = Drone(
        "drone-001",
        HOME,
        HOME,
        (
            window("w1", NOW - timedelta(hours=3), NOW - timedelta(hours=2), a),
            window("w2", NOW - timedelta(hours=2), NOW, b),  # ends exactly now: finished
            window("w3", NOW, NOW + timedelta(hours=1), c),
        ),
    )
    pruned = drone.pruned(NOW)
    assert pruned.last_location == b
    assert [w.delivery_id for w in pruned.schedule] == ["w3"]
    assert pruned.home == HOME


def test_pruning_with_nothing_finished_leaves_the_drone_as_it_is() -> None:
    drone = Drone("drone-001", HOME, HOME, (window("w", NOW, NOW + timedelta(hours=1), SEATTLE),))
    assert drone.pruned(NOW) is drone
    assert drone.pruned(NOW + timedelta(hours=1)).schedule == ()
    assert drone.pruned(NOW + timedelta(hours=1)).last_location == SEATTLE


# --- choosing a drone ------------------------------------------------------------------


def test_the_drone_that_drops_off_soonest_is_chosen() -> None:
    pickup = north_of(HOME, 10)
    fleet = [
        idle_drone(north_of(HOME, 0), "far"),
        idle_drone(north_of(HOME, 9), "near"),
        idle_drone(north_of(HOME, 30), "beyond"),
    ]
    t = trip(pickup, north_of(pickup, 5))
    for seed in range(20):
        drone, w = best_drone(fleet, t, NOW, random.Random(seed))
        assert drone.id == "near"
        assert w == drone.plan(t, NOW)


def test_a_nearby_busy_drone_loses_to_a_free_one_further_away() -> None:
    pickup = north_of(HOME, 10)
    busy = Drone("busy", pickup, pickup, (window("x", NOW, NOW + timedelta(hours=1), pickup),))
    free = idle_drone(north_of(HOME, 5), "free")
    drone, _ = best_drone([busy, free], trip(pickup, north_of(pickup, 1)), NOW, random.Random(0))
    assert drone.id == "free"


def test_only_equally_good_drones_are_chosen_among() -> None:
    pickup = north_of(HOME, 10)
    at_pickup_1 = idle_drone(pickup, "a")
    at_pickup_2 = idle_drone(pickup, "b")
    # 0.3 miles away: 27 s later, within the margin; 1.5 miles: 135 s later, outside it.
    close = idle_drone(north_of(pickup, -0.3), "close")
    too_far = idle_drone(north_of(pickup, -1.5), "too-far")
    fleet = [too_far, close, at_pickup_2, at_pickup_1]
    t = trip(pickup, north_of(pickup, 2))
    best = at_pickup_1.plan(t, NOW).delivery_eta
    assert close.plan(t, NOW).delivery_eta - best <= EQUALLY_GOOD
    assert too_far.plan(t, NOW).delivery_eta - best > EQUALLY_GOOD
    chosen = {best_drone(fleet, t, NOW, random.Random(seed))[0].id for seed in range(200)}
    assert chosen == {"a", "b", "close"}


def test_the_choice_is_reproducible_with_the_same_seed() -> None:
    pickup = north_of(HOME, 10)
    fleet = [idle_drone(pickup, f"drone-{i}") for i in range(10)]
    t = trip(pickup, north_of(pickup, 2))
    first = [best_drone(fleet, t, NOW, random.Random(seed))[0].id for seed in range(30)]
    again = [best_drone(fleet, t, NOW, random.Random(seed))[0].id for seed in range(30)]
    assert first == again
    assert len(set(first)) > 1  # ties really are spread


# --- the fleet -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 4, 9, 16, 25, 100])
def test_a_square_fleet_is_centred_on_the_base(size: int) -> None:
    homes = fleet_homes(size, SEATTLE)
    assert len(homes) == size
    assert len(set(homes)) == size
    assert sum(h.latitude for h in homes) / size == pytest.approx(SEATTLE.latitude, abs=1e-6)
    assert sum(h.longitude for h in homes) / size == pytest.approx(SEATTLE.longitude, abs=1e-6)


def test_a_single_drone_lives_at_the_base() -> None:
    assert fleet_homes(1, SEATTLE) == [Location(SEATTLE.latitude, SEATTLE.longitude, 0.0)]


@pytest.mark.parametrize("size", [2, 5, 10, 20])
def test_any_fleet_has_its_size_and_stays_around_the_base(size: int) -> None:
    homes = fleet_homes(size, SEATTLE, spacing_miles=1.0)
    assert len(homes) == size
    assert len(set(homes)) == size
    side = math.ceil(math.sqrt(size))
    # No base is further than the corner of the square grid.
    corner = (side - 1) / 2 * math.sqrt(2) * 1.0
    assert max(miles_between(SEATTLE, h) for h in homes) <= corner * 1.01


def test_neighbouring_bases_are_the_spacing_apart() -> None:
    homes = fleet_homes(9, SEATTLE, spacing_miles=2.0)
    # Row-major on a 3x3 grid: 0-1 are east-west neighbours, 0-3 north-south.
    assert miles_between(homes[0], homes[1]) == pytest.approx(2.0, rel=0.01)
    assert miles_between(homes[0], homes[3]) == pytest.approx(2.0, rel=0.01)


def test_drone_ids_are_numbered_from_one() -> None:
    assert [drone_id(i) for i in (0, 9, 99)] == ["drone-001", "drone-010", "drone-100"]


# --- stored as JSON --------------------------------------------------------------------


def test_a_window_survives_a_json_round_trip() -> None:
    w = idle_drone().plan(trip(north_of(HOME, 3), north_of(HOME, 9), expedited=True), NOW)
    text = json.dumps(w.to_json())
    back = Window.from_json(json.loads(text))
    assert back == w
    assert back.departure.tzinfo is not None


def test_a_drone_with_a_schedule_survives_a_json_round_trip() -> None:
    drone = Drone("drone-007", SEATTLE, north_of(SEATTLE, 1))
    for name in ("a", "b"):
        drone = drone.with_window(
            drone.plan(trip(north_of(SEATTLE, 2), north_of(SEATTLE, 4), delivery_id=name), NOW), NOW
        )
    back = Drone.from_json(json.loads(json.dumps(drone.to_json())))
    assert back == drone
    assert len(back.schedule) == 2
    assert all(isinstance(w, list) for w in drone.to_json()["schedule"])  # rows, compact
    # The API shows windows as objects; a drone stored that way (before windows were rows)
    # reads the same.
    assert drone.view()["schedule"] == [w.to_json() for w in drone.schedule]
    assert Drone.from_json(json.loads(json.dumps(drone.view()))) == drone


def test_a_window_as_a_row_keeps_its_times_to_the_microsecond() -> None:
    w = idle_drone().plan(trip(north_of(HOME, 3), north_of(HOME, 9)), NOW)
    odd = replace(w, requested_at=datetime(2031, 5, 6, 7, 8, 9, 999_999, tzinfo=UTC))
    back = Window.from_row(json.loads(json.dumps(odd.to_row())))
    assert back == odd
    assert back.requested_at.tzinfo is not None
    assert len(json.dumps(odd.to_row())) < len(json.dumps(odd.to_json())) * 0.7


def test_the_stored_shape_uses_the_api_field_names() -> None:
    w = idle_drone().plan(trip(HOME, north_of(HOME, 1)), NOW)
    assert set(w.to_json()) == {
        "deliveryId",
        "requestedAt",
        "departure",
        "departureLocation",
        "pickupETA",
        "deliveryETA",
        "dropoff",
        "miles",
    }
    assert set(idle_drone().to_json()) == {"id", "home", "lastLocation", "schedule"}


def test_a_location_without_altitude_reads_as_ground_level() -> None:
    assert Location.from_json({"latitude": "47.5", "longitude": -122}) == Location(
        47.5, -122.0, 0.0
    )


# A booking far ahead leaves the drone free until then.


def test_a_booking_far_in_the_future_does_not_block_the_drone_until_then() -> None:
    far = trip(
        HOME, north_of(HOME, 3), delivery_id="far", earliest_pickup=NOW + timedelta(days=400)
    )
    drone = idle_drone()
    drone = drone.with_window(drone.plan(far, NOW), NOW)
    soon = drone.plan(trip(HOME, north_of(HOME, 2), delivery_id="soon"), NOW)
    assert soon.departure == NOW
    assert soon.delivery_eta < drone.window_for("far").departure  # type: ignore[union-attr]
    drone = drone.with_window(soon, NOW)
    assert [w.delivery_id for w in drone.schedule] == ["soon", "far"]


def test_a_trip_that_cannot_reach_the_next_booking_in_time_goes_after_it() -> None:
    drone = idle_drone()
    # Booked to leave home in 20 minutes: a 30-mile trip cannot fit before that.
    booked = window(
        "booked", NOW + timedelta(minutes=20), NOW + timedelta(minutes=40), north_of(HOME, 1)
    )
    drone = drone.with_window(booked, NOW)
    long_trip = drone.plan(trip(HOME, north_of(HOME, 30), delivery_id="long"), NOW)
    assert long_trip.departure >= booked.delivery_eta
    short_trip = drone.plan(trip(HOME, north_of(HOME, 1), delivery_id="short"), NOW)
    # 1 mile there, 2 min loading, 1 mile back to the booking's start: fits before it.
    assert short_trip.delivery_eta <= booked.departure
    drone = drone.with_window(short_trip, NOW).with_window(long_trip, NOW)
    assert [w.delivery_id for w in drone.schedule] == ["short", "booked", "long"]


def test_a_window_inserted_over_another_is_refused() -> None:
    drone = idle_drone().with_window(
        window("a", NOW + timedelta(minutes=10), NOW + timedelta(minutes=30), HOME), NOW
    )
    with pytest.raises(DoubleBooking, match="b overlaps a"):
        drone.with_window(window("b", NOW, NOW + timedelta(minutes=15), HOME), NOW)


def _plan_every_gap(drone: Drone, trip: TripRequest, now: datetime) -> Window:
    """The gap search with no shortcuts: every slot tried, the soonest drop-off kept."""
    mph = EXPEDITED_MPH if trip.expedited else CRUISE_MPH
    options = []
    free_at, here = now, drone.last_location
    for following in (*drone.schedule, None):
        window = Drone._trip(trip, miles_between(trip.pickup, trip.dropoff), free_at, here, mph)
        fits = following is None or (
            window.departure >= free_at
            and window.delivery_eta
            + timedelta(
                hours=miles_between(window.dropoff, following.departure_location) / CRUISE_MPH
            )
            <= following.departure
        )
        if fits:
            options.append(window)
        if following is not None:
            free_at, here = max(free_at, following.delivery_eta), following.dropoff
    return min(options, key=lambda w: w.delivery_eta)


def _booked_at_random(
    drone: Drone, rng: random.Random, *, bookings: int, within_minutes: float
) -> Drone:
    """The drone with up to `bookings` trips planned on it, picked up within the minutes."""
    for i in range(rng.randint(0, bookings)):
        request = TripRequest(
            delivery_id=f"{drone.id}b{i}",
            pickup=north_of(HOME, rng.uniform(0, 8)),
            dropoff=north_of(HOME, rng.uniform(0, 8)),
            expedited=rng.random() < 0.3,
            earliest_pickup=NOW + timedelta(minutes=rng.uniform(0, within_minutes)),
            requested_at=NOW,
        )
        drone = drone.with_window(drone.plan(request, NOW), NOW)
    return drone


def test_the_shortcuts_in_planning_find_the_same_slot_as_trying_every_gap() -> None:
    # plan() skips gaps too short for any trip and stops once slots start after the best
    # drop-off; over many random schedules it must choose exactly what a full search does.
    rng = random.Random(7)
    for case in range(300):
        drone = _booked_at_random(Drone("d", HOME, HOME), rng, bookings=12, within_minutes=600)
        trip = TripRequest(
            delivery_id=f"new{case}",
            pickup=north_of(HOME, rng.uniform(0, 5)),
            dropoff=north_of(HOME, rng.uniform(0, 5)),
            expedited=rng.random() < 0.3,
            earliest_pickup=rng.choice([None, NOW + timedelta(minutes=rng.uniform(0, 300))]),
            requested_at=NOW,
        )
        chosen = drone.plan(trip, NOW)
        assert chosen.delivery_eta == _plan_every_gap(drone, trip, NOW).delivery_eta, case
        drone.with_window(chosen, NOW)  # and it fits: DoubleBooking otherwise
        # Planned again later, on the same drone (its slots are kept), with some of its
        # windows finished by then.
        later = NOW + timedelta(minutes=rng.uniform(0, 400))
        again = drone.plan(trip, later)
        assert again.delivery_eta == _plan_every_gap(drone, trip, later).delivery_eta, case


def _around(place: Location, rng: random.Random, miles: float) -> Location:
    """Somewhere within about `miles` of the place, in any direction."""
    north, east = rng.uniform(-miles, miles), rng.uniform(-miles, miles)
    per_degree_east = MILES_PER_DEGREE * math.cos(math.radians(place.latitude))
    return Location(
        place.latitude + north / MILES_PER_DEGREE, place.longitude + east / per_degree_east
    )


def _new_trip(
    rng: random.Random, k: int, *, miles: tuple[float, float], minutes: float
) -> TripRequest:
    """A trip to plan on drones around HOME: its places `miles` from it, picked up as soon as
    possible or within `minutes`."""
    return TripRequest(
        delivery_id=f"new{k}",
        pickup=_around(HOME, rng, rng.uniform(*miles)),
        dropoff=_around(HOME, rng, rng.uniform(*miles)),
        expedited=rng.random() < 0.3,
        earliest_pickup=rng.choice([None, NOW + timedelta(minutes=rng.uniform(0, minutes))]),
        requested_at=NOW,
    )


def _assert_runs_hold_their_gaps(drone: Drone) -> None:
    """Each run, as kept window by window, says what a run over its gaps worked out whole
    would say, and the runs cover every gap once."""
    line = drone._timeline
    assert line.starts[:1] == ([0] if line.gaps else [])
    for run, a, b in zip(line.runs, line.starts, [*line.starts[1:], len(line.gaps)], strict=True):
        assert 0 < b - a < 2 * GAP_RUN
        (whole,), _ = _runs(line.gaps, line.slack, line.latitudes, line.longitudes, a, b)
        assert run == whole
    assert line.runs == [] or len(line.runs) == len(line.starts)


def test_leaping_over_runs_of_short_gaps_finds_the_same_slot_as_trying_every_gap() -> None:
    # With hundreds of windows planning passes over whole runs of gaps too short for the
    # trip (models.GAP_RUN), by the widest gap of each run, the box around its places and
    # the flights via the drone's centre: bounds only, so never a slot a full search takes
    # (a backlog of short trips near home, new trips from further away: the bounds bite).
    rng = random.Random(17)
    for case in range(12):
        drone = Drone("d", HOME, HOME)
        for i in range(rng.randint(150, 300)):
            request = TripRequest(
                delivery_id=f"b{i}",
                pickup=_around(HOME, rng, 0.5),
                dropoff=_around(HOME, rng, 0.5),
                expedited=rng.random() < 0.3,
                # Every other case in no order: windows go in at the front and in between,
                # not only last (in order, the gaps are all short: the bounds bite).
                earliest_pickup=NOW
                + timedelta(minutes=30 * (i if case % 2 else rng.randrange(300))),
                requested_at=NOW,
            )
            drone = drone.with_window(drone.plan(request, NOW), NOW)
            if i % 37 == 0:  # some finish meanwhile: the runs are cut at the front
                drone = drone.pruned(NOW + timedelta(minutes=rng.uniform(0, 30 * i)))
        _assert_runs_hold_their_gaps(drone)
        for k in range(25):
            t = _new_trip(rng, k, miles=(1, 8), minutes=600)
            later = NOW + timedelta(minutes=rng.choice([0, rng.uniform(0, 900)]))
            chosen = drone.plan(t, later)
            assert chosen.delivery_eta == _plan_every_gap(drone, t, later).delivery_eta, (case, k)
            drone.with_window(chosen, later)  # and it fits: DoubleBooking otherwise


def test_choosing_a_drone_with_cut_offs_gives_what_planning_every_drone_gives() -> None:
    # best_drone stops planning a drone once it cannot come within EQUALLY_GOOD of the best
    # so far; the drones it chooses among must be exactly those a full comparison finds.
    rng = random.Random(11)
    for case in range(100):
        fleet = []
        for d in range(rng.randint(1, 8)):
            home = north_of(HOME, rng.uniform(0, 3))
            drone = Drone(f"d{d}", home, home)
            fleet.append(_booked_at_random(drone, rng, bookings=10, within_minutes=300))
        t = trip(north_of(HOME, rng.uniform(0, 4)), north_of(HOME, rng.uniform(0, 4)))
        plans = sorted(
            ((d, d.plan(t, NOW)) for d in fleet), key=lambda o: (o[1].delivery_eta, o[0].id)
        )
        best = plans[0][1].delivery_eta
        good = [(d.id, w.delivery_eta) for d, w in plans if w.delivery_eta - best <= EQUALLY_GOOD]
        for seed in range(3):
            drone, window = best_drone(fleet, t, NOW, random.Random(seed))
            assert (drone.id, window.delivery_eta) == random.Random(seed).choice(good), case


@settings(max_examples=400, deadline=None)
@given(
    st.floats(-89.9, 89.9),
    st.floats(-180, 180),
    st.floats(-6, 6),
    st.floats(-6, 6),
)
def test_the_flat_bound_on_a_flight_is_never_longer_than_the_great_circle(
    latitude: float, longitude: float, north: float, east: float
) -> None:
    # Planning passes over a gap on the flat distances before working out the great
    # circles (_at_least_miles): near the poles, across the antimeridian, at any distance.
    place = Location(latitude, longitude)
    there = Location(max(-90.0, min(90.0, latitude + north)), (longitude + east + 180) % 360 - 180)
    widest = min(90.0, max(abs(place.latitude), abs(there.latitude)))
    bound = _at_least_miles(there.latitude, there.longitude, place, math.cos(math.radians(widest)))
    assert bound <= miles_between(place, there) * (1 + 1e-12) + 1e-9


@pytest.mark.parametrize("flights", ["none", "some"])
def test_a_trip_that_fits_a_gap_to_the_microsecond_goes_into_it(flights: str) -> None:
    # The bounds before the great circles leave a millisecond to spare: a gap the trip
    # fills exactly is still taken, and one a microsecond shorter is not. With no flights
    # (the gap starts at the pickup and ends at the drop-off) the flat bounds are exact.
    pickup, dropoff = north_of(HOME, 3), north_of(HOME, 5)
    start, end = (pickup, dropoff) if flights == "none" else (north_of(HOME, 1), HOME)
    t = trip(pickup, dropoff, earliest_pickup=NOW)
    shortest = LOADING + timedelta(hours=miles_between(pickup, dropoff) / CRUISE_MPH)
    before = Window("a", NOW, NOW, HOME, NOW, NOW + timedelta(minutes=10), start, 1.0)
    drop = (
        before.delivery_eta + timedelta(hours=miles_between(start, pickup) / CRUISE_MPH) + shortest
    )
    back = timedelta(hours=miles_between(dropoff, end) / CRUISE_MPH)
    for short_by, fits in ((timedelta(0), True), (timedelta(microseconds=1), False)):
        departs = drop + back - short_by
        after = Window("b", NOW, departs, end, departs, departs + timedelta(minutes=5), HOME, 1)
        drone = Drone("d", HOME, HOME, (before,)).with_window(after, NOW)
        chosen = drone.plan(t, NOW)
        assert (chosen.delivery_eta == drop) is fits
        assert chosen.delivery_eta == _plan_every_gap(drone, t, NOW).delivery_eta
        assert drone.start(t, NOW).soonest <= chosen.delivery_eta


def test_choosing_among_drones_with_long_schedules_gives_what_trying_every_gap_gives() -> None:
    # A booking ranks its drones by where planning on each would start (Drone.start) and
    # passes over those that cannot come within EQUALLY_GOOD of the best on that bound
    # alone: the drones chosen among must be exactly those that trying every gap of every
    # drone finds, with schedules long enough for the bisecting and the runs to bite.
    rng = random.Random(23)
    for case in range(20):
        fleet = []
        for d in range(rng.randint(2, 6)):
            home = _around(HOME, rng, 3)
            drone = Drone(f"d{d}", home, home)
            for i in range(rng.randint(20, 150)):
                request = TripRequest(
                    delivery_id=f"d{d}b{i}",
                    pickup=_around(home, rng, 0.5),
                    dropoff=_around(home, rng, 0.5),
                    expedited=rng.random() < 0.3,
                    earliest_pickup=NOW + timedelta(minutes=rng.uniform(0, 30 * i)),
                    requested_at=NOW,
                )
                drone = drone.with_window(drone.plan(request, NOW), NOW)
            fleet.append(drone)
        for k in range(10):
            t = _new_trip(rng, k, miles=(0.5, 5), minutes=900)
            now = NOW + timedelta(minutes=rng.choice([0, rng.uniform(0, 600)]))
            plans = sorted(
                ((d, _plan_every_gap(d, t, now)) for d in fleet),
                key=lambda o: (o[1].delivery_eta, o[0].id),
            )
            for d, w in plans:
                assert d.start(t, now).soonest <= w.delivery_eta, (case, k, d.id)
            best = plans[0][1].delivery_eta
            good = [
                (d.id, w.delivery_eta) for d, w in plans if w.delivery_eta - best <= EQUALLY_GOOD
            ]
            for seed in range(2):
                drone, window = best_drone(fleet, t, now, random.Random(seed))
                assert (drone.id, window.delivery_eta) == random.Random(seed).choice(good), (
                    case,
                    k,
                )


def _fitting_one_by_one(
    line: _Timeline,
    slot: int,
    need: Callable[[int], timedelta],
    via_centre: timedelta,
    until: int | None,
    fits: Callable[[int], bool],
) -> int:
    """_Timeline.fitting with no runs leapt over: every gap from the slot's on, in turn."""
    end = len(line.gaps) if until is None else min(until, len(line.gaps))
    for j in range(slot - 1, end):
        run = bisect.bisect_right(line.starts, j) - 1
        if line.slack[j] >= via_centre and line.gaps[j] >= need(run) and fits(j):
            return j + 1
    return end + 1


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), windows=st.integers(2, 400))
def test_the_gap_search_over_runs_finds_the_gap_a_search_one_by_one_finds(
    seed: int, windows: int
) -> None:
    # fitting leaps over whole runs by their widest gap and slack, and stops at `until`;
    # whatever the gaps, the needs per run, the bound `fits` and where the search starts
    # and stops, it must return the slot a walk over every gap returns.
    rng = random.Random(seed)
    schedule, at = [], NOW
    for i in range(windows):
        departure = at + timedelta(minutes=rng.choice([0, rng.uniform(0, 60)]))
        at = departure + timedelta(minutes=rng.uniform(1, 30))
        schedule.append(window(f"w{i}", departure, at, _around(HOME, rng, rng.uniform(0, 3))))
    line = Drone("d", HOME, HOME, tuple(schedule))._timeline
    needs = {run: timedelta(minutes=rng.uniform(0, 60)) for run in range(len(line.runs))}
    via_centre = timedelta(minutes=rng.uniform(-10, 80))
    passing = {j for j in range(len(line.gaps)) if rng.random() < rng.random()}
    for _ in range(20):
        slot = rng.randint(1, len(line.gaps) + 1)
        until = rng.choice([None, rng.randint(0, len(line.gaps) + 2)])
        for fits in (passing.__contains__, lambda j: True):
            expected = _fitting_one_by_one(line, slot, needs.__getitem__, via_centre, until, fits)
            found = line.fitting(slot, needs.__getitem__, via_centre, until, fits)
            # From beyond `until` the search does not start: then it is where it starts.
            assert found == (slot if until is not None and slot > until + 1 else expected)
