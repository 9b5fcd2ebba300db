"""Where a delivery stands, worked out from its timetable and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from delivery.models import Stage, _between, status_of

DEPARTURE = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
PICKUP_ETA = DEPARTURE + timedelta(minutes=10)
DELIVERY_ETA = PICKUP_ETA + timedelta(minutes=30)
START = {"altitude": 0.0, "latitude": 47.0, "longitude": -122.0}
PICKUP = {"altitude": 0.0, "latitude": 47.1, "longitude": -122.0}
DROPOFF = {"altitude": 100.0, "latitude": 47.1, "longitude": -122.2}


def delivery(**extra: Any) -> dict[str, Any]:
    """A delivery document as the delivery service stores it."""
    return {
        "id": "d1",
        "departure": {"time": DEPARTURE.isoformat(), "location": START},
        "pickupETA": PICKUP_ETA.isoformat(),
        "deliveryETA": DELIVERY_ETA.isoformat(),
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        **extra,
    }


def close_to(point: dict[str, float], expected: dict[str, float]) -> bool:
    return all(point[k] == pytest.approx(expected[k], abs=1e-6) for k in expected)


def test_before_departure_it_is_created_and_at_the_drone_s_start() -> None:
    s = status_of(delivery(), DEPARTURE - timedelta(hours=1))
    assert s.stage is Stage.CREATED
    assert s.last_known_location == START
    assert s.pickup_eta == PICKUP_ETA
    assert s.delivery_eta == DELIVERY_ETA


def test_a_rescheduled_delivery_says_so_until_departure() -> None:
    assert status_of(delivery(rescheduled=True), DEPARTURE - timedelta(seconds=1)).stage is (
        Stage.RESCHEDULED
    )
    assert status_of(delivery(rescheduled=True), DEPARTURE).stage is Stage.HEADED_TO_PICKUP


def test_at_departure_it_is_headed_to_pickup_from_the_start() -> None:
    s = status_of(delivery(), DEPARTURE)
    assert s.stage is Stage.HEADED_TO_PICKUP
    assert close_to(s.last_known_location, START)


def test_half_way_to_pickup_it_is_half_way_there() -> None:
    s = status_of(delivery(), DEPARTURE + timedelta(minutes=5))
    assert s.stage is Stage.HEADED_TO_PICKUP
    assert close_to(
        s.last_known_location, {"altitude": 0.0, "latitude": 47.05, "longitude": -122.0}
    )


def test_at_pickup_it_is_headed_to_dropoff_from_the_pickup() -> None:
    s = status_of(delivery(), PICKUP_ETA)
    assert s.stage is Stage.HEADED_TO_DROPOFF
    assert close_to(s.last_known_location, PICKUP)


def test_half_way_to_dropoff_it_is_half_way_there() -> None:
    s = status_of(delivery(), PICKUP_ETA + timedelta(minutes=15))
    assert s.stage is Stage.HEADED_TO_DROPOFF
    assert close_to(
        s.last_known_location, {"altitude": 50.0, "latitude": 47.1, "longitude": -122.1}
    )


def test_a_quarter_of_the_way_to_dropoff() -> None:
    s = status_of(delivery(), PICKUP_ETA + timedelta(minutes=7, seconds=30))
    assert close_to(
        s.last_known_location, {"altitude": 25.0, "latitude": 47.1, "longitude": -122.05}
    )


def test_at_the_delivery_eta_it_is_completed_at_the_dropoff() -> None:
    for now in (DELIVERY_ETA, DELIVERY_ETA + timedelta(days=3)):
        s = status_of(delivery(), now)
        assert s.stage is Stage.COMPLETED
        assert s.last_known_location == DROPOFF


def test_a_confirmation_completes_it_early() -> None:
    confirmation = {"dateTime": PICKUP_ETA.isoformat(), "confirmationType": "Picture"}
    s = status_of(delivery(confirmation=confirmation), PICKUP_ETA + timedelta(minutes=1))
    assert s.stage is Stage.COMPLETED
    assert s.last_known_location == DROPOFF


def test_a_cancelled_delivery_stays_where_it_was_when_cancelled() -> None:
    cancelled_at = DEPARTURE + timedelta(minutes=5)  # half way to the pickup
    doc = delivery(cancelled=True, cancelledAt=cancelled_at.isoformat())
    for now in (
        cancelled_at,
        DELIVERY_ETA - timedelta(minutes=1),
        DELIVERY_ETA + timedelta(days=1),
    ):
        s = status_of(doc, now)
        assert s.stage is Stage.CANCELLED
        assert close_to(
            s.last_known_location, {"altitude": 0.0, "latitude": 47.05, "longitude": -122.0}
        )


def test_a_delivery_cancelled_before_departure_never_left() -> None:
    doc = delivery(cancelled=True, cancelledAt=(DEPARTURE - timedelta(hours=1)).isoformat())
    s = status_of(doc, DELIVERY_ETA + timedelta(hours=1))
    assert s.stage is Stage.CANCELLED
    assert s.last_known_location == START


def test_a_delivery_cancelled_after_drop_off_is_cancelled_at_the_dropoff() -> None:
    doc = delivery(cancelled=True, cancelledAt=(DELIVERY_ETA + timedelta(hours=1)).isoformat())
    s = status_of(doc, DELIVERY_ETA + timedelta(hours=2))
    assert s.stage is Stage.CANCELLED
    assert s.last_known_location == DROPOFF


def test_a_cancel_time_in_the_future_is_not_used_before_it_comes() -> None:
    # Clocks disagree: the cancel is stamped later than "now"; the drone is where it is now.
    doc = delivery(cancelled=True, cancelledAt=(DELIVERY_ETA + timedelta(hours=1)).isoformat())
    s = status_of(doc, PICKUP_ETA + timedelta(minutes=15))
    assert s.stage is Stage.CANCELLED
    assert close_to(
        s.last_known_location, {"altitude": 50.0, "latitude": 47.1, "longitude": -122.1}
    )


def test_a_cancelled_delivery_without_a_cancel_time_is_where_it_is_now() -> None:
    s = status_of(delivery(cancelled=True), DEPARTURE + timedelta(minutes=5))
    assert s.stage is Stage.CANCELLED
    assert close_to(
        s.last_known_location, {"altitude": 0.0, "latitude": 47.05, "longitude": -122.0}
    )


def test_cancelled_wins_over_confirmed() -> None:
    doc = delivery(
        cancelled=True,
        cancelledAt=(DEPARTURE + timedelta(minutes=5)).isoformat(),
        confirmation={"confirmationType": "None"},
    )
    assert status_of(doc, DELIVERY_ETA + timedelta(hours=1)).stage is Stage.CANCELLED


def test_stage_names_are_the_original_api_s_and_failed() -> None:
    assert [s.value for s in Stage] == [
        "Created",
        "Rescheduled",
        "HeadedToPickup",
        "HeadedToDropoff",
        "Completed",
        "Cancelled",
        "Failed",  # not in the original: a delivery that can never be scheduled
    ]


FAILED_AT = DEPARTURE - timedelta(hours=2)


def failure(**extra: Any) -> dict[str, Any]:
    """A failure recorded before anything was scheduled: no drone, no timetable."""
    return {
        "id": "d1",
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "droneId": "",
        "failureReason": "it could not be recorded: delivery answered 400 pickup: too high",
        "failedAt": FAILED_AT.isoformat(),
        **extra,
    }


def test_a_delivery_failed_before_scheduling_waits_at_the_pickup_as_of_its_failure() -> None:
    for now in (FAILED_AT, DEPARTURE, DELIVERY_ETA + timedelta(days=1)):
        s = status_of(failure(), now)
        assert s.stage is Stage.FAILED
        assert s.last_known_location == PICKUP
        assert (s.pickup_eta, s.delivery_eta) == (FAILED_AT, FAILED_AT)


def test_a_scheduled_delivery_that_failed_keeps_its_planned_times_and_never_moves() -> None:
    doc = delivery(failureReason="no drone", failedAt=FAILED_AT.isoformat())
    for now in (DEPARTURE - timedelta(hours=1), PICKUP_ETA, DELIVERY_ETA + timedelta(days=1)):
        s = status_of(doc, now)
        assert s.stage is Stage.FAILED
        assert s.last_known_location == PICKUP
        assert (s.pickup_eta, s.delivery_eta) == (PICKUP_ETA, DELIVERY_ETA)


def test_failed_wins_over_confirmed_and_over_the_clock() -> None:
    doc = delivery(
        failureReason="no drone",
        failedAt=FAILED_AT.isoformat(),
        confirmation={"confirmationType": "None"},
    )
    assert status_of(doc, DELIVERY_ETA + timedelta(hours=1)).stage is Stage.FAILED


def test_a_failed_delivery_cancelled_afterwards_is_cancelled_at_the_pickup() -> None:
    cancelled_at = (FAILED_AT + timedelta(minutes=1)).isoformat()
    for doc in (
        failure(cancelled=True, cancelledAt=cancelled_at),
        delivery(
            failureReason="no drone",
            failedAt=FAILED_AT.isoformat(),
            cancelled=True,
            cancelledAt=cancelled_at,
        ),
    ):
        s = status_of(doc, DEPARTURE + timedelta(minutes=5))
        assert s.stage is Stage.CANCELLED
        assert s.last_known_location == PICKUP


def test_the_location_never_leaves_the_route_at_any_time() -> None:
    lats = [p["latitude"] for p in (START, PICKUP, DROPOFF)]
    lons = [p["longitude"] for p in (START, PICKUP, DROPOFF)]
    for minute in range(-30, 90):
        where = status_of(delivery(), DEPARTURE + timedelta(minutes=minute)).last_known_location
        assert min(lats) <= where["latitude"] <= max(lats)
        assert min(lons) <= where["longitude"] <= max(lons)
        assert 0.0 <= where["altitude"] <= 100.0


def test_a_drone_starting_at_the_pickup_is_headed_to_dropoff_at_departure() -> None:
    doc = delivery()
    doc["pickupETA"] = DEPARTURE.isoformat()
    doc["departure"] = {"time": DEPARTURE.isoformat(), "location": PICKUP}
    s = status_of(doc, DEPARTURE)
    assert s.stage is Stage.HEADED_TO_DROPOFF
    assert close_to(s.last_known_location, PICKUP)


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(-0.5, START), (0.0, START), (1.0, PICKUP), (1.5, PICKUP), (3.0, PICKUP)],
)
def test_interpolation_is_clamped_to_the_leg(fraction: float, expected: dict[str, float]) -> None:
    assert close_to(_between(START, PICKUP, fraction), expected)


def test_interpolated_points_are_rounded_to_six_decimals() -> None:
    point = _between(START, DROPOFF, 1 / 3)
    assert point == {"altitude": 33.333333, "latitude": 47.033333, "longitude": -122.066667}
