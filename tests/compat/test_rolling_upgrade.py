"""The previous release and the current code on one queue and one set of stores, both ways.

Upgrade: the previous release accepts and processes a delivery (its documents: ingestion's
record, the package, the drone and its claim, the delivery), then, with its workflow
stopped, leaves a create and a reschedule on the queue. The current code then takes over:
its workflow processes the previous release's messages against the previous release's
documents, and its ingestion reschedules and cancels deliveries whose records the previous
release wrote.

Rollback (or the side-by-side release's old half): the current code leaves a create and a
cancel on the queue, the previous release takes over, processes them against what the
current code wrote, and its ingestion reschedules a delivery the current code accepted.

Each step is checked through the services' APIs (delivery, assignment, package), and a
message a release could not read shows up in the failure as a dead letter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compat.harness import CURRENT, Releases, dependencies_differ, footing, previous_services
from tests.e2e.original_clients import SCHEDULED, hours_from_now

PREVIOUS = "previous"


@pytest.fixture(params=["embedded", "servers"])
def releases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Releases]:
    previous = previous_services()
    if differ := dependencies_differ():
        print(f"the previous release runs on this venv; changed since: {', '.join(differ)}")
    with footing(request.param, tmp_path) as where:
        both = Releases(where, tmp_path / "logs", previous)
        try:
            yield both
        finally:
            both.down()
            print(f"\ncompat logs in {tmp_path / 'logs'}")


def _request(n: int, run: str) -> dict[str, Any]:
    return {
        "ownerId": f"compat-owner-{run}",
        "pickupLocation": f"47.6{n},-122.33",
        "dropOffLocation": f"47.6{n},-122.3{n}",
        "pickupTime": hours_from_now(1).isoformat().replace("+00:00", "Z"),
        "deadline": "",
        "expedited": n % 2 == 0,
        "confirmationRequired": "None",
        "packageInfo": {"packageId": f"pkg-{n}", "size": "Small", "tag": f"t{n}", "weight": n},
    }


class Client:
    """A delivery's operations as a client sends them, and what the services then show."""

    def __init__(self, releases: Releases) -> None:
        self.releases = releases
        self.run = uuid.uuid4().hex[:8]

    def create(self, n: int) -> str:
        with self.releases.client("ingestion") as c:
            r = c.post("/api/deliveryrequests", json=_request(n, self.run))
        assert r.status_code == 202, r.text
        delivery_id: str = r.json()["deliveryId"]
        return delivery_id

    def reschedule(self, delivery_id: str, dropoff: str) -> None:
        with self.releases.client("ingestion") as c:
            r = c.patch(f"/api/deliveryrequests/{delivery_id}", json={"dropOffLocation": dropoff})
        assert r.status_code == 200, r.text

    def cancel(self, delivery_id: str) -> None:
        with self.releases.client("ingestion") as c:
            r = c.delete(f"/api/deliveryrequests/{delivery_id}")
        assert r.status_code == 204, r.text

    def _get(self, service: str, path: str) -> dict[str, Any] | None:
        with self.releases.client(service) as c:
            try:
                r = c.get(path)
            except httpx.TransportError:
                return None
        return r.json() if r.status_code == 200 else None

    def scheduled(self, delivery_id: str, n: int, dropoff: str) -> dict[str, Any]:
        """The delivery recorded with its drone, its drop-off `dropoff`, its package's
        weight n, and the drone's claim naming the same drone."""

        def done() -> dict[str, Any] | None:
            delivery = self._get("delivery", f"/api/deliveries/{delivery_id}")
            status = self._get("delivery", f"/api/deliveries/{delivery_id}/status")
            claim = self._get("dronescheduler", f"/api/dronedeliveries/{delivery_id}")
            lat, lon = (float(x) for x in dropoff.split(","))
            if not (delivery and status and claim) or status["stage"] not in SCHEDULED:
                return None
            here = delivery["dropoff"]
            if (here["latitude"], here["longitude"]) != (lat, lon):
                return None
            return delivery if claim["droneId"] == delivery["droneId"] else None

        delivery: dict[str, Any] = self.releases.until(
            done, f"{delivery_id} scheduled to {dropoff}"
        )
        owner = delivery["owner"]["userId"]
        package = self._get("package", f"/api/packages/pkg-{n}?ownerId={owner}")
        assert package is not None and package["weight"] == n, package
        return delivery

    def cancelled(self, delivery_id: str) -> None:
        def done() -> bool:
            status = self._get("delivery", f"/api/deliveries/{delivery_id}/status")
            claim = self._get("dronescheduler", f"/api/dronedeliveries/{delivery_id}")
            return bool(status and status["stage"] == "Cancelled" and claim)

        self.releases.until(done, f"{delivery_id} cancelled")
        claim = self._get("dronescheduler", f"/api/dronedeliveries/{delivery_id}")
        assert claim is not None and claim["status"] == "Cancelled", claim


def test_each_release_processes_what_the_other_queued_and_wrote(releases: Releases) -> None:
    client = Client(releases)
    # The previous release alone: documents of every kind, then messages left queued.
    releases.run(PREVIOUS)
    one = client.create(1)
    client.scheduled(one, 1, "47.61,-122.31")
    releases.stop("workflow")
    two = client.create(2)
    client.reschedule(one, "47.7,-122.4")

    # Upgrade: the current code reads the previous release's messages and documents.
    releases.run(CURRENT)
    client.scheduled(two, 2, "47.62,-122.32")
    client.scheduled(one, 1, "47.7,-122.4")
    client.reschedule(two, "47.72,-122.42")  # records the previous release wrote
    client.cancel(one)
    client.scheduled(two, 2, "47.72,-122.42")
    client.cancelled(one)

    # Rollback: the previous release reads what the current code queued and wrote.
    releases.stop("workflow")
    three = client.create(3)
    client.cancel(two)
    releases.run(PREVIOUS)
    client.scheduled(three, 3, "47.63,-122.33")
    client.cancelled(two)
    client.reschedule(three, "47.73,-122.43")  # a record the current code wrote
    client.scheduled(three, 3, "47.73,-122.43")
    assert releases.dead_letters() == []
