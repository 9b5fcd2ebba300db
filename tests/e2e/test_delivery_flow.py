"""The system end to end, through its single entry point, as a client uses it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import GUIDE_REQUEST, System, eventually


def request_body(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(GUIDE_REQUEST)
    body.update(changes)
    return body


def wait_for_delivery(
    client: httpx.Client, delivery_id: str, within: float = 30.0
) -> dict[str, Any]:
    def scheduled() -> dict[str, Any] | None:
        r = client.get(f"/api/deliveries/{delivery_id}")
        return r.json() if r.status_code == 200 else None

    return eventually(scheduled, within=within, what=f"delivery {delivery_id} scheduled")


def later(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


@pytest.mark.parametrize("prefix", ["/v0.1.0", ""])
def test_the_guides_request_is_accepted_and_scheduled_with_a_drone(
    system: System, prefix: str
) -> None:
    with system.client() as client:
        r = client.post(f"{prefix}/api/deliveryrequests", json=GUIDE_REQUEST)
        assert r.status_code == 202, r.text
        accepted = r.json()
        delivery_id = accepted["deliveryId"]
        assert {k: accepted[k] for k in ("ownerId", "pickupLocation", "dropOffLocation")} == {
            "ownerId": "myowner",
            "pickupLocation": "my pickup",
            "dropOffLocation": "drop off",
        }
        assert r.headers["location"] == f"{prefix}/api/deliveries/{delivery_id}"

        delivery = wait_for_delivery(client, delivery_id)
        r = client.get(f"{prefix}/api/deliveries/{delivery_id}")
        assert r.status_code == 200 and r.json() == delivery
        assert delivery["id"] == delivery_id
        assert delivery["droneId"].startswith("drone-")
        assert delivery["owner"] == {"userId": "myowner", "accountId": "myowner"}
        assert delivery["expedited"] is True and delivery["confirmationRequired"] == "None"

        status = client.get(f"{prefix}/api/deliveries/{delivery_id}/status").json()
        # The pickup time is past, so the drone leaves as soon as it is free: now, or after
        # the trips it is already booked for when the fleet is busy (other tests load it).
        assert status["stage"] in ("Created", "HeadedToPickup", "HeadedToDropoff")
        assert status["pickupETA"] < status["deliveryETA"]


def test_the_requests_locations_and_owner_are_kept(system: System) -> None:
    with system.client() as client:
        body = request_body(
            ownerId="owner-locations",
            pickupLocation="47.61,-122.33,10",
            dropOffLocation="47.65,-122.30",
        )
        delivery_id = client.post("/api/deliveryrequests", json=body).json()["deliveryId"]
        delivery = wait_for_delivery(client, delivery_id)
    assert delivery["pickup"] == {"altitude": 10.0, "latitude": 47.61, "longitude": -122.33}
    assert delivery["dropoff"] == {"altitude": 0.0, "latitude": 47.65, "longitude": -122.30}
    assert delivery["owner"]["userId"] == "owner-locations"


def test_a_future_delivery_is_created_then_rescheduled(system: System) -> None:
    with system.client() as client:
        body = request_body(
            ownerId="owner-reschedule", pickupTime=later(3), dropOffLocation="47.70,-122.35"
        )
        delivery_id = client.post("/api/deliveryrequests", json=body).json()["deliveryId"]
        wait_for_delivery(client, delivery_id)
        before = client.get(f"/api/deliveries/{delivery_id}/status").json()
        assert before["stage"] == "Created"

        r = client.patch(
            f"/v0.1.0/api/deliveryrequests/{delivery_id}",
            json={"dropOffLocation": "47.55,-122.25", "pickupTime": later(5)},
        )
        assert r.status_code == 200, r.text
        assert r.json()["deliveryId"] == delivery_id

        def rescheduled() -> dict[str, Any] | None:
            s = client.get(f"/api/deliveries/{delivery_id}/status").json()
            return s if s["stage"] == "Rescheduled" else None

        after = eventually(rescheduled, what="stage Rescheduled")
        assert after["pickupETA"] > before["pickupETA"]
        delivery = client.get(f"/api/deliveries/{delivery_id}").json()
        assert (delivery["dropoff"]["latitude"], delivery["dropoff"]["longitude"]) == (
            47.55,
            -122.25,
        )


def test_cancel_marks_the_delivery_cancelled_and_frees_its_drone(system: System) -> None:
    with system.client() as client:
        body = request_body(ownerId="owner-cancel", pickupTime=later(2))
        delivery_id = client.post("/api/deliveryrequests", json=body).json()["deliveryId"]
        drone = wait_for_delivery(client, delivery_id)["droneId"]
        with system.internal("dronescheduler") as scheduler:
            windows = scheduler.get(f"/api/drones/{drone}").json()["schedule"]
            assert delivery_id in [w["deliveryId"] for w in windows]

            assert client.delete(f"/api/deliveryrequests/{delivery_id}").status_code == 204

            eventually(
                lambda: (
                    client.get(f"/api/deliveries/{delivery_id}/status").json()["stage"]
                    == "Cancelled"
                ),
                what="stage Cancelled",
            )
            windows = scheduler.get(f"/api/drones/{drone}").json()["schedule"]
            assert delivery_id not in [w["deliveryId"] for w in windows]
            assert (
                scheduler.get(f"/api/dronedeliveries/{delivery_id}").json()["status"] == "Cancelled"
            )


def test_the_same_delivery_always_gets_the_same_drone(system: System) -> None:
    with system.client() as client:
        delivery_id = client.post("/api/deliveryrequests", json=request_body()).json()["deliveryId"]
        drone = wait_for_delivery(client, delivery_id)["droneId"]
    with system.internal("dronescheduler") as scheduler:
        request = scheduler.get(f"/api/dronedeliveries/{delivery_id}").json()["request"]
        for _ in range(3):
            again = scheduler.put(f"/api/dronedeliveries/{delivery_id}", json=request)
            assert again.status_code == 200 and again.json()["droneId"] == drone
        fleet = scheduler.get("/api/drones").json()
    holders = [d["id"] for d in fleet for w in d["schedule"] if w["deliveryId"] == delivery_id]
    assert holders == [drone]


def test_summaries_and_utilization_are_computed_from_stored_data(system: System) -> None:
    owner = "owner-summary"
    with system.client() as client:
        ids = []
        for i, weight in enumerate((2.5, 4.0, 1.5)):
            body = request_body(ownerId=owner, pickupTime=later(1))
            body["packageInfo"] = {
                **body["packageInfo"],
                "packageId": f"summary-pkg-{i}",
                "weight": weight,
            }
            ids.append(client.post("/api/deliveryrequests", json=body).json()["deliveryId"])
        for delivery_id in ids:
            wait_for_delivery(client, delivery_id)
    with system.internal("package") as package:
        assert package.get(f"/api/packages/summary/{owner}").json() == {"totalWeight": 8.0}
    month = datetime.now(UTC) + timedelta(hours=1)
    query = {"ownerId": owner, "year": month.year, "month": month.month}
    with system.internal("delivery") as delivery:
        # An hour from now may fall in the next month; the departure decides the month.
        counts = [
            delivery.get("/api/deliveries/summary", params={**query, "month": m}).json()["count"]
            for m in {month.month, datetime.now(UTC).month}
        ]
        assert sum(counts) == 3
    with system.internal("dronescheduler") as scheduler:
        used = scheduler.get("/api/dronedeliveries/utilization", params=query).json()
        assert used["traveledMiles"] > 0 and used["assignedHours"] > 0


BAD_REQUESTS = [
    ({"ownerId": None}, "ownerId"),
    (
        {"packageInfo": {"packageId": "p", "size": "Huge", "weight": 1, "tag": ""}},
        "packageInfo.size",
    ),
    (
        {"packageInfo": {"packageId": "p", "size": "Small", "weight": -3, "tag": ""}},
        "packageInfo.weight",
    ),
    (
        {"packageInfo": {"packageId": "a/b", "size": "Small", "weight": 1, "tag": ""}},
        "packageInfo.packageId",
    ),
    ({"pickupTime": "yesterday"}, "pickupTime"),
    ({"deadline": "x" * 257}, "deadline"),
    ({"confirmationRequired": "Telepathy"}, "confirmationRequired"),
    ({"expedited": "very"}, "expedited"),
    ({"pickupLocation": ""}, "pickupLocation"),
]


@pytest.mark.parametrize(("change", "field"), BAD_REQUESTS)
def test_bad_input_is_a_400_that_names_the_field(
    system: System, change: dict[str, Any], field: str
) -> None:
    body = request_body(**change)
    body = {k: v for k, v in body.items() if v is not None}
    with system.client() as client:
        r = client.post("/api/deliveryrequests", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/deliveryrequests", b"{not json", 400),
        ("POST", "/api/deliveryrequests", b"[]", 400),
        ("PATCH", "/api/deliveryrequests/some-id", b"{}", 400),
        ("PATCH", "/api/deliveryrequests/some-id", b'{"pickupTime": 5.5}', 400),
        ("GET", "/api/deliveries/no-such-delivery", None, 404),
        ("GET", "/api/deliveries/no-such-delivery/status", None, 404),
        (
            "POST",
            "/api/deliveries/no-such-delivery/notifymerequests",
            b'{"emailAddress": "a@b.c"}',
            404,
        ),
        ("GET", "/api/nothing-here", None, 404),
    ],
)
def test_client_mistakes_get_a_clear_4xx(
    system: System, method: str, path: str, body: bytes | None, status: int
) -> None:
    with system.client() as client:
        r = client.request(method, path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["title"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/deliveries/some-id"),
        ("DELETE", "/api/deliveries/some-id"),
        ("PATCH", "/api/deliveries/some-id"),
        ("PUT", "/api/deliveries/some-id/failure"),
        ("GET", "/api/deliveries/summary"),
        ("POST", "/api/deliveries/some-id/confirmations"),
        ("GET", "/api/packages/mypackage"),
        ("PUT", "/api/packages/mypackage"),
        ("GET", "/api/dronedeliveries/some-id"),
        ("GET", "/api/drones"),
        ("GET", "/v0.1.0/api/packages/summary/myowner"),
        ("GET", "/api/workflow/progress"),
    ],
)
def test_internal_apis_are_not_reachable_through_the_entry_point(
    system: System, method: str, path: str
) -> None:
    with system.client() as client:
        r = client.request(method, path, json={})
    assert r.status_code in (404, 405), f"{method} {path} answered {r.status_code}"


def test_every_service_reports_live_and_ready(system: System) -> None:
    for service in ("ingestion", "workflow", "package", "dronescheduler", "delivery"):
        with system.internal(service) as client:
            assert client.get("/health/live").status_code == 200, service
            assert client.get("/health/ready").json() == {"status": "ready"}, service


def test_a_retried_post_with_the_same_idempotency_key_is_one_delivery(system: System) -> None:
    body = request_body(ownerId="owner-idempotent", pickupTime=later(1))
    key = {"Idempotency-Key": f"order-{datetime.now(UTC).timestamp()}"}
    with system.client() as client:
        first = client.post("/api/deliveryrequests", json=body, headers=key)
        again = client.post("/api/deliveryrequests", json=body, headers=key)
        assert first.status_code == again.status_code == 202
        delivery_id = first.json()["deliveryId"]
        assert again.json()["deliveryId"] == delivery_id
        assert again.headers["location"] == first.headers["location"]
        wait_for_delivery(client, delivery_id)

        other = client.post("/api/deliveryrequests", json={**body, "expedited": False}, headers=key)
        assert other.status_code == 422, other.text
        assert "Idempotency-Key" in other.json()["detail"]
    with system.internal("dronescheduler") as scheduler:
        fleet = scheduler.get("/api/drones").json()
    holders = [d["id"] for d in fleet for w in d["schedule"] if w["deliveryId"] == delivery_id]
    assert len(holders) == 1


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_changing_a_delivery_that_was_never_requested_is_a_404(system: System, method: str) -> None:
    with system.client() as client:
        r = client.request(
            method, "/api/deliveryrequests/never-issued", json={"pickupTime": later(1)}
        )
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_a_header_value_that_is_not_ascii_passes_the_entry_point(system: System) -> None:
    with system.client() as client:
        r = client.post(
            "/api/deliveryrequests",
            json=request_body(ownerId="owner-headers"),
            headers=[(b"X-Note", "caf\u00e9".encode("latin-1"))],
        )
    assert r.status_code == 202, r.text
