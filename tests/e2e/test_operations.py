"""Reschedules and cancels as clients send them: at once after the 202, twice in a row, and
after a cancel; requests no drone can carry; one package id used by two owners."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import System, eventually
from tests.e2e.test_delivery_flow import later, request_body, wait_for_delivery


def status_of(client: Any, delivery_id: str) -> dict[str, Any] | None:
    r = client.get(f"/api/deliveries/{delivery_id}/status")
    return r.json() if r.status_code == 200 else None


def holders(system: System, delivery_id: str) -> list[str]:
    with system.internal("dronescheduler") as scheduler:
        fleet = scheduler.get("/api/drones").json()
    return [d["id"] for d in fleet for w in d["schedule"] if w["deliveryId"] == delivery_id]


def test_a_cancel_sent_at_once_after_the_202_wins(system: System) -> None:
    with system.client() as client:
        ids = []
        for _ in range(5):
            body = request_body(ownerId="owner-quick-cancel", pickupTime=later(4))
            delivery_id = client.post("/api/deliveryrequests", json=body).json()["deliveryId"]
            assert client.delete(f"/api/deliveryrequests/{delivery_id}").status_code == 204
            ids.append(delivery_id)
        for delivery_id in ids:
            final = eventually(
                lambda i=delivery_id: (s := status_of(client, i)) and s["stage"] == "Cancelled",
                what=f"{delivery_id} cancelled",
            )
            assert final
    # Whatever order workflow took them in: no drone holds any of them, and none comes back.
    for delivery_id in ids:
        assert holders(system, delivery_id) == []
    with system.internal("dronescheduler") as scheduler:
        for delivery_id in ids:
            r = scheduler.get(f"/api/dronedeliveries/{delivery_id}")
            assert r.status_code == 404 or r.json()["status"] == "Cancelled"


def test_two_quick_reschedules_of_different_fields_both_apply_and_agree(system: System) -> None:
    with system.client() as client:
        body = request_body(ownerId="owner-two-changes", pickupTime=later(3))
        delivery_id = client.post("/api/deliveryrequests", json=body).json()["deliveryId"]
        path = f"/api/deliveryrequests/{delivery_id}"
        assert client.patch(path, json={"pickupLocation": "47.61,-122.31"}).status_code == 200
        assert client.patch(path, json={"dropOffLocation": "47.66,-122.29"}).status_code == 200

        def both_applied() -> dict[str, Any] | None:
            r = client.get(f"/api/deliveries/{delivery_id}")
            d = r.json() if r.status_code == 200 else None
            wanted = ((47.61, -122.31), (47.66, -122.29))
            got = d and (
                (d["pickup"]["latitude"], d["pickup"]["longitude"]),
                (d["dropoff"]["latitude"], d["dropoff"]["longitude"]),
            )
            return d if got == wanted else None

        delivery = eventually(both_applied, what="both reschedules applied")
    with system.internal("dronescheduler") as scheduler:
        assignment = scheduler.get(f"/api/dronedeliveries/{delivery_id}").json()
    # The drone's plan is for the same request the delivery shows.
    assert assignment["droneId"] == delivery["droneId"]
    assert assignment["request"]["pickup"]["latitude"] == 47.61
    assert assignment["request"]["dropoff"]["latitude"] == 47.66
    assert holders(system, delivery_id) == [delivery["droneId"]]


def test_a_reschedule_after_a_cancel_is_a_409_and_the_cancel_stands(system: System) -> None:
    with system.client() as client:
        body = request_body(ownerId="owner-late-change", pickupTime=later(3))
        delivery_id = client.post("/api/deliveryrequests", json=body).json()["deliveryId"]
        assert client.delete(f"/api/deliveryrequests/{delivery_id}").status_code == 204
        r = client.patch(f"/api/deliveryrequests/{delivery_id}", json={"deadline": ""})
        assert r.status_code == 409
        assert "cancelled" in r.json()["detail"]
        # A repeated cancel is fine: it changes nothing.
        assert client.delete(f"/api/deliveryrequests/{delivery_id}").status_code == 204
        eventually(
            lambda: (s := status_of(client, delivery_id)) and s["stage"] == "Cancelled",
            what="cancelled",
        )


def test_a_request_no_drone_can_carry_fails_with_its_reason_and_holds_no_one_up(
    system: System,
) -> None:
    with system.client() as client:
        far = [
            client.post(
                "/api/deliveryrequests",
                json=request_body(ownerId="owner-far", pickupTime="9999-12-31T23:59:59.000Z"),
            ).json()["deliveryId"]
            for _ in range(12)
        ]
        normal = [
            client.post("/api/deliveryrequests", json=request_body(ownerId="owner-near")).json()[
                "deliveryId"
            ]
            for _ in range(5)
        ]
        for delivery_id in normal:
            wait_for_delivery(client, delivery_id, within=30)
        for delivery_id in far:
            failed = eventually(
                lambda i=delivery_id: (s := status_of(client, i)) and s["stage"] == "Failed",
                what=f"{delivery_id} failed",
            )
            assert failed
            reason = client.get(f"/api/deliveries/{delivery_id}").json()["failureReason"]
            assert "pickupTime" in reason and "no drone" in reason


def test_a_failed_delivery_rescheduled_to_a_time_that_can_be_planned_is_scheduled(
    system: System,
) -> None:
    with system.client() as client:
        body = request_body(ownerId="owner-revived", pickupTime="9999-12-31T23:59:59.000Z")
        delivery_id = client.post("/api/deliveryrequests", json=body).json()["deliveryId"]
        eventually(
            lambda: (s := status_of(client, delivery_id)) and s["stage"] == "Failed",
            what="failed",
        )
        path = f"/api/deliveryrequests/{delivery_id}"
        assert client.patch(path, json={"pickupTime": later(2)}).status_code == 200
        revived = eventually(
            lambda: (s := status_of(client, delivery_id)) and s["stage"] == "Rescheduled" and s,
            what="scheduled after the reschedule",
        )
        delivery = client.get(f"/api/deliveries/{delivery_id}").json()
    assert delivery["failureReason"] is None and delivery["droneId"]
    assert holders(system, delivery_id) == [delivery["droneId"]]
    assert revived["pickupETA"] > later(1)


def test_two_owners_with_the_same_package_id_keep_their_own_packages(system: System) -> None:
    with system.client() as client:
        for owner, weight in (("owner-pkg-a", 3.0), ("owner-pkg-b", 7.0)):
            body = request_body(
                ownerId=owner,
                packageInfo={"packageId": "shared-name", "size": "Small", "weight": weight},
            )
            delivery_id = client.post("/api/deliveryrequests", json=body).json()["deliveryId"]
            wait_for_delivery(client, delivery_id)
    with system.internal("package") as package:
        for owner, weight in (("owner-pkg-a", 3.0), ("owner-pkg-b", 7.0)):
            r = package.get("/api/packages/shared-name", params={"ownerId": owner})
            assert r.status_code == 200, r.text
            assert r.json()["weight"] == weight
            assert package.get(f"/api/packages/summary/{owner}").json()["totalWeight"] == weight
