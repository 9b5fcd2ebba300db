"""The console's fleet view worked out without I/O: where a drone is shown and which windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dronescheduler.console import MAX_WINDOWS, drone_on_map
from dronescheduler.models import Drone, Location, Window

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
HOME = Location(47.60, -122.33)
PICKUP = Location(47.62, -122.33)
DROPOFF = Location(47.62, -122.30)


def window(delivery_id: str, departs_in: float, minutes: float = 20.0) -> Window:
    departure = NOW + timedelta(minutes=departs_in)
    return Window(
        delivery_id=delivery_id,
        requested_at=NOW - timedelta(hours=1),
        departure=departure,
        departure_location=HOME,
        pickup_eta=departure + timedelta(minutes=minutes / 2),
        delivery_eta=departure + timedelta(minutes=minutes),
        dropoff=DROPOFF,
        miles=5.0,
    )


def test_a_drone_in_flight_is_halfway_to_the_pickup_halfway_through_that_leg() -> None:
    drone = Drone("drone-001", HOME, HOME, (window("d-1", -5),))  # pickup 5 minutes ahead
    shown = drone_on_map(drone, PICKUP, NOW, timedelta(hours=6))
    assert shown["flying"] == "d-1"
    assert abs(shown["position"]["latitude"] - 47.61) < 1e-9
    assert abs(shown["position"]["longitude"] - -122.33) < 1e-9
    assert [p["at"] for p in shown["route"]] == [
        NOW - timedelta(minutes=5),
        NOW + timedelta(minutes=5),
        NOW + timedelta(minutes=15),
    ]


def test_an_idle_drone_stands_where_its_last_trip_ended_and_shows_what_is_ahead() -> None:
    drone = Drone("drone-001", HOME, HOME, (window("done", -40), window("next", 30)))
    shown = drone_on_map(drone, None, NOW, timedelta(hours=6))
    assert shown["flying"] is None and shown["route"] == []
    assert shown["position"] == {"latitude": DROPOFF.latitude, "longitude": DROPOFF.longitude}
    assert [w["deliveryId"] for w in shown["windows"]] == ["next"]
    assert shown["booked"] == 1


def test_the_timeline_is_bounded_by_the_horizon_and_a_count() -> None:
    many = tuple(window(f"d-{i}", 25 * i + 1) for i in range(200))
    shown = drone_on_map(Drone("drone-001", HOME, HOME, many), None, NOW, timedelta(hours=48))
    assert len(shown["windows"]) == MAX_WINDOWS and shown["booked"] == 200
    short = drone_on_map(Drone("drone-001", HOME, HOME, many), None, NOW, timedelta(hours=1))
    assert [w["deliveryId"] for w in short["windows"]] == ["d-0", "d-1", "d-2"]
