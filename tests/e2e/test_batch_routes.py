"""The internal batch routes workflow calls: each item answered as its single call would be,
on the running services and their stores (SQLite, or PostgreSQL and Redis with
E2E_FOOTING=servers)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chassis.batches import MAX_BATCH
from tests.e2e.conftest import System

WHEN = "2030-05-08T20:00:00+00:00"
POINT = {"altitude": 0.0, "latitude": 47.6, "longitude": -122.3}


def _id(kind: str) -> str:
    return f"batch-{kind}-{uuid.uuid4().hex[:10]}"


def _results(system: System, service: str, path: str, items: list[Any]) -> list[dict[str, Any]]:
    with system.internal(service) as client:
        r = client.post(path, json={"items": items})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    assert len(results) == len(items)
    return results


def _statuses(results: list[dict[str, Any]]) -> list[int]:
    return [r["status"] for r in results]


def _package(package_id: str, owner: str, **changes: Any) -> dict[str, Any]:
    return {
        "packageId": package_id,
        "size": "Small",
        "weight": 2.5,
        "tag": "t",
        "ownerId": owner,
        "requestedAt": WHEN,
        **changes,
    }


def test_package_batch_answers_each_item_as_its_put(system: System) -> None:
    owner, first, second = _id("owner"), _id("p"), _id("p")
    items = [
        _package(first, owner),
        _package(first, owner),  # the same again, in the same batch: it exists by then
        _package(_id("p"), owner, weight=-1),
        _package(second, owner, weight=7.0),
    ]
    results = _results(system, "package", "/api/packages/batch", items)

    assert _statuses(results) == [201, 204, 400, 201]
    assert results[0]["body"] == {
        "id": first,
        "size": "Small",
        "weight": 2.5,
        "tag": "t",
        "ownerId": owner,
    }
    assert [e["field"] for e in results[2]["body"]["errors"]] == ["weight"]
    with system.internal("package") as client:
        stored = client.get(f"/api/packages/{second}", params={"ownerId": owner}).json()
    assert stored["weight"] == 7.0

    # An older write to an existing package changes nothing, as its PUT would not.
    older = _package(second, owner, weight=9.0, requestedAt="2020-01-01T00:00:00+00:00")
    assert _statuses(_results(system, "package", "/api/packages/batch", [older])) == [204]
    with system.internal("package") as client:
        kept = client.get(f"/api/packages/{second}", params={"ownerId": owner}).json()
    assert kept["weight"] == 7.0


def _schedule(delivery_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "owner": {"userId": "batch-owner", "accountId": "batch-owner"},
        "pickup": POINT,
        "dropoff": POINT,
        "droneId": "drone-1",
        "packageId": "p-1",
        "departure": {"time": WHEN, "location": POINT},
        "pickupETA": WHEN,
        "deliveryETA": WHEN,
        "requestedAt": WHEN,
        "version": 1,
        **changes,
    }


def test_delivery_batch_answers_each_item_as_its_put(system: System) -> None:
    new, known, cancelled = _id("d"), _id("d"), _id("d")
    with system.internal("delivery") as client:
        assert client.put(f"/api/deliveries/{known}", json=_schedule(known)).status_code == 201
        cancellation = {"ownerId": "batch-owner", "pickup": POINT, "dropoff": POINT, "version": 2}
        r = client.put(f"/api/deliveries/{cancelled}/cancellation", json=cancellation)
        assert r.status_code == 201
    items = [
        _schedule(new),
        _schedule(known, version=2, droneId="drone-2"),
        _schedule(cancelled),
        _schedule(_id("d"), pickup={**POINT, "altitude": 20_000}),
    ]
    results = _results(system, "delivery", "/api/deliveries/batch", items)

    assert _statuses(results) == [201, 204, 409, 400]
    assert "cancelled" in results[2]["body"]["detail"]
    assert [e["field"] for e in results[3]["body"]["errors"]] == ["pickup.altitude"]
    with system.internal("delivery") as client:
        assert client.get(f"/api/deliveries/{new}").json()["droneId"] == "drone-1"
        assert client.get(f"/api/deliveries/{known}").json()["droneId"] == "drone-2"


def _drone_request(delivery_id: str, **changes: Any) -> dict[str, Any]:
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    return {
        "deliveryId": delivery_id,
        "ownerId": "batch-owner",
        "pickup": POINT,
        "dropoff": {**POINT, "latitude": 47.61},
        "packageDetail": {"id": "p-1", "size": "Small"},
        "pickupTime": soon,
        "requestedAt": soon,
        "version": 1,
        **changes,
    }


def test_drone_batch_books_each_item_as_its_put(system: System) -> None:
    first, second, cancelled = _id("d"), _id("d"), _id("d")
    with system.internal("dronescheduler") as client:
        r = client.delete(f"/api/dronedeliveries/{cancelled}", params={"version": "2"})
        assert r.status_code == 204
    items = [
        _drone_request(first),
        _drone_request(second),
        _drone_request(cancelled),
        _drone_request(_id("d"), pickupTime="9999-12-31T00:00:00+00:00"),
    ]
    results = _results(system, "dronescheduler", "/api/dronedeliveries/batch", items)

    assert _statuses(results) == [200, 200, 409, 422]
    assert {results[0]["body"]["deliveryId"], results[1]["body"]["deliveryId"]} == {first, second}
    assert all(results[n]["body"]["droneId"] for n in (0, 1))
    assert [e["field"] for e in results[3]["body"]["errors"]] == ["pickupTime"]
    # The same again is the same booking, as a repeated PUT is.
    again = _results(system, "dronescheduler", "/api/dronedeliveries/batch", items[:1])
    assert _statuses(again) == [200]
    assert again[0]["body"]["droneId"] == results[0]["body"]["droneId"]


def test_a_batch_out_of_bounds_is_refused_whole(system: System) -> None:
    with system.internal("package") as client:
        assert client.post("/api/packages/batch", json={"items": []}).status_code == 400
        many = [_package(_id("p"), "o") for _ in range(MAX_BATCH + 1)]
        assert client.post("/api/packages/batch", json={"items": many}).status_code == 400


def test_batch_routes_are_not_public(system: System) -> None:
    with system.client() as client:
        for path in ("/api/packages/batch", "/api/dronedeliveries/batch", "/api/deliveries/batch"):
            assert client.post(path, json={"items": [{}]}).status_code in (404, 405), path
