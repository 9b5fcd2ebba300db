"""Recording that a delivery can never be scheduled, through the delivery service's own app
on SQLite: idempotent, ordered by `requestedAt`, and never over a cancel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from delivery.config import Settings
from delivery.main import create_app

ID = "d-1"
PICKUP = {"altitude": 0.0, "latitude": 47.61, "longitude": -122.33}
DROPOFF = {"altitude": 0.0, "latitude": 47.65, "longitude": -122.3}
T1, T2, T3 = (f"2024-05-08T12:0{m}:00+00:00" for m in (1, 2, 3))


@pytest.fixture
def delivery(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store_url=f"sqlite:///{tmp_path}/d.db"))) as client:
        yield client


def failure(
    reason: str = "no drone could be assigned: dronescheduler answered 400 no", **extra: Any
) -> dict[str, Any]:
    return {
        "ownerId": "owner-1",
        "reason": reason,
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "deadline": "",
        "expedited": True,
        "confirmationRequired": "Picture",
        "requestedAt": T2,
        **extra,
    }


def schedule(requested_at: str | None = T2) -> dict[str, Any]:
    return {
        "id": ID,
        "owner": {"userId": "owner-1", "accountId": "owner-1"},
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "droneId": "drone-007",
        "departure": {"time": "2099-05-08T19:50:00+00:00", "location": PICKUP},
        "pickupETA": "2099-05-08T20:00:00+00:00",
        "deliveryETA": "2099-05-08T20:30:00+00:00",
        "requestedAt": requested_at,
    }


def stage(client: TestClient) -> str:
    return str(client.get(f"/api/deliveries/{ID}/status").json()["stage"])


def test_a_failure_for_an_unknown_delivery_creates_it_failed_in_the_public_shape(
    delivery: TestClient,
) -> None:
    r = delivery.put(f"/api/deliveries/{ID}/failure", json=failure())
    assert r.status_code == 201
    assert r.headers["Location"] == f"/api/deliveries/{ID}"
    assert delivery.get(f"/api/deliveries/{ID}").json() == {
        "id": ID,
        "owner": {"userId": "owner-1", "accountId": "owner-1"},
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "deadline": "",
        "expedited": True,
        "confirmationRequired": "Picture",
        "droneId": "",
        "failureReason": "no drone could be assigned: dronescheduler answered 400 no",
        "deadlineTime": None,
    }
    status = delivery.get(f"/api/deliveries/{ID}/status").json()
    assert status["stage"] == "Failed"
    assert status["lastKnownLocation"] == PICKUP
    assert status["pickupETA"] == status["deliveryETA"]  # the failure time: never null


def test_repeating_a_failure_changes_nothing(delivery: TestClient) -> None:
    assert delivery.put(f"/api/deliveries/{ID}/failure", json=failure()).status_code == 201
    first = delivery.get(f"/api/deliveries/{ID}/status").json()
    for again in (failure(), failure("another reason"), failure(requestedAt=None)):
        assert delivery.put(f"/api/deliveries/{ID}/failure", json=again).status_code == 204
    assert delivery.get(f"/api/deliveries/{ID}").json()["failureReason"] == failure()["reason"]
    assert delivery.get(f"/api/deliveries/{ID}/status").json() == first


def test_a_scheduled_delivery_marked_failed_keeps_no_drone_or_timetable(
    delivery: TestClient,
) -> None:
    # Workflow frees the drone of a delivery that failed: the record says so, and reads the
    # same as a failure recorded before any schedule.
    assert delivery.put(f"/api/deliveries/{ID}", json=schedule(T1)).status_code == 201
    assert delivery.put(f"/api/deliveries/{ID}/failure", json=failure()).status_code == 204
    status = delivery.get(f"/api/deliveries/{ID}/status").json()
    assert status["stage"] == "Failed"
    assert status["pickupETA"] == status["deliveryETA"]  # the failure time: no plan stands
    shown = delivery.get(f"/api/deliveries/{ID}").json()
    assert shown["failureReason"] == failure()["reason"]
    assert shown["droneId"] == ""


def test_a_late_failure_of_an_older_request_does_not_undo_a_newer_schedule(
    delivery: TestClient,
) -> None:
    assert delivery.put(f"/api/deliveries/{ID}", json=schedule(T2)).status_code == 201
    late = failure(requestedAt=T1)
    assert delivery.put(f"/api/deliveries/{ID}/failure", json=late).status_code == 204
    assert stage(delivery) == "Created"
    assert delivery.get(f"/api/deliveries/{ID}").json()["failureReason"] is None


def test_a_newer_failure_replaces_the_reason(delivery: TestClient) -> None:
    delivery.put(f"/api/deliveries/{ID}/failure", json=failure("first", requestedAt=T1))
    newer = failure("second", requestedAt=T2)
    assert delivery.put(f"/api/deliveries/{ID}/failure", json=newer).status_code == 204
    assert delivery.get(f"/api/deliveries/{ID}").json()["failureReason"] == "second"


def test_a_cancelled_delivery_stays_cancelled(delivery: TestClient) -> None:
    delivery.put(f"/api/deliveries/{ID}", json=schedule(T1))
    assert delivery.delete(f"/api/deliveries/{ID}").status_code == 204
    r = delivery.put(f"/api/deliveries/{ID}/failure", json=failure(requestedAt=T3))
    assert r.status_code == 409
    assert r.headers["Content-Type"] == "application/problem+json"
    assert stage(delivery) == "Cancelled"
    assert delivery.get(f"/api/deliveries/{ID}").json()["failureReason"] is None


def test_the_request_that_failed_cannot_schedule_it_but_a_newer_one_can(
    delivery: TestClient,
) -> None:
    delivery.put(f"/api/deliveries/{ID}/failure", json=failure(requestedAt=T2))
    for replayed in (T1, T2, None):
        r = delivery.put(f"/api/deliveries/{ID}", json=schedule(replayed))
        assert r.status_code == 409, replayed
        assert "failed" in r.json()["detail"]
    assert stage(delivery) == "Failed"

    assert delivery.put(f"/api/deliveries/{ID}", json=schedule(T3)).status_code == 204
    assert stage(delivery) == "Created"
    body = delivery.get(f"/api/deliveries/{ID}").json()
    assert body["droneId"] == "drone-007"
    assert body["failureReason"] is None


def test_a_failed_delivery_cannot_be_rescheduled_or_confirmed_but_can_be_cancelled(
    delivery: TestClient,
) -> None:
    delivery.put(f"/api/deliveries/{ID}/failure", json=failure())
    patch = {"deadline": "2099-05-09T00:00:00Z", "requestedAt": T3}
    assert delivery.patch(f"/api/deliveries/{ID}", json=patch).status_code == 409
    confirmation = {
        "dateTime": T3,
        "geoCoordinates": DROPOFF,
        "confirmationType": "Picture",
    }
    r = delivery.post(f"/api/deliveries/{ID}/confirmations", json=confirmation)
    assert r.status_code == 409
    assert stage(delivery) == "Failed"

    assert delivery.delete(f"/api/deliveries/{ID}").status_code == 204
    assert stage(delivery) == "Cancelled"
    # Cancelled is final: a newer request no longer revives it.
    assert delivery.put(f"/api/deliveries/{ID}", json=schedule(T3)).status_code == 409


def test_failed_deliveries_are_not_counted_in_the_summary(delivery: TestClient) -> None:
    for delivery_id in ("kept", "failed"):
        body = {**schedule(T1), "id": delivery_id}
        assert delivery.put(f"/api/deliveries/{delivery_id}", json=body).status_code == 201
    delivery.put("/api/deliveries/failed/failure", json=failure())
    query = {"ownerId": "owner-1", "year": 2099, "month": 5}
    assert delivery.get("/api/deliveries/summary", params=query).json() == {"count": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 1001}, "reason"),
        ({"ownerId": ""}, "ownerId"),
        ({"pickup": {"latitude": 91, "longitude": 0}}, "pickup.latitude"),
        ({"requestedAt": "yesterday"}, "requestedAt"),
    ],
)
def test_a_bad_failure_is_a_400_naming_the_field(
    delivery: TestClient, change: dict[str, Any], field: str
) -> None:
    r = delivery.put(f"/api/deliveries/{ID}/failure", json=failure(**change))
    assert r.status_code == 400
    assert field in [e["field"] for e in r.json()["errors"]]
    assert delivery.get(f"/api/deliveries/{ID}").status_code == 404


def test_a_confirmation_with_the_largest_blob_the_schema_admits_is_taken(
    delivery: TestClient,
) -> None:
    # The body limit every service keeps must not refuse what delivery's schema admits.
    assert delivery.put(f"/api/deliveries/{ID}", json=schedule()).status_code == 201
    blob = "x" * 1_000_000
    confirmation = {
        "dateTime": "2099-05-08T20:30:00Z",
        "geoCoordinates": {"latitude": 47.6, "longitude": -122.3},
        "confirmationType": "Picture",
        "confirmationBlob": blob,
    }
    r = delivery.post(f"/api/deliveries/{ID}/confirmations", json=confirmation)
    assert r.status_code == 200, r.text[:300]
