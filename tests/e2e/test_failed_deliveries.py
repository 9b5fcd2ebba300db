"""A delivery that can never be scheduled: workflow books a drone, the delivery service
refuses to record the delivery, and the compensation runs for real: the delivery is marked
Failed with the reason, its drone is freed, and the message stays in the dead letters.

No valid request makes the delivery service refuse what the drone scheduler accepted, so
workflow is pointed at a front for the delivery service that refuses to record one owner's
deliveries (a 400 problem, as an invalid body gets) and passes everything else, the failure
record included, to the real service unchanged."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import GUIDE_REQUEST, System, dead_lettered, eventually
from tests.loopback import LoopbackHandler, LoopbackServer, answer

OWNER = "owner-unrecordable"
REFUSAL = {
    "type": "about:blank",
    "title": "Bad Request",
    "status": 400,
    "detail": "invalid or missing: pickup",
    "errors": [{"field": "pickup", "message": "cannot be recorded"}],
}
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class RefusingFront:
    """In front of the delivery service: PUT /api/deliveries/{id} for OWNER answers the
    refusal (and keeps the body it refused), and so does each such item of a batch (the
    others go on as a batch); everything else is forwarded."""

    def __init__(self, delivery_url: str) -> None:
        self.refused: list[dict[str, Any]] = []
        upstream = httpx.Client(base_url=delivery_url, timeout=10)
        lock = threading.Lock()
        front = self

        class Handler(LoopbackHandler):
            def respond(self) -> None:
                body = self.body()
                if self.command == "PUT" and re.fullmatch(r"/api/deliveries/[^/]+", self.path):
                    sent = json.loads(body)
                    if sent.get("owner", {}).get("userId") == OWNER:
                        front.refused.append(sent)
                        self._reply(400, {"Content-Type": "application/problem+json"}, REFUSAL)
                        return
                if self.command == "POST" and self.path == "/api/deliveries/batch":
                    self._batch(json.loads(body)["items"])
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                with lock:
                    r = upstream.request(self.command, self.path, content=body, headers=headers)
                kept = {k: v for k, v in r.headers.items() if k.lower() not in HOP_BY_HOP}
                self._reply(r.status_code, kept, r.content)

            def _batch(self, items: list[dict[str, Any]]) -> None:
                refused = [i.get("owner", {}).get("userId") == OWNER for i in items]
                front.refused += [i for i, no in zip(items, refused, strict=True) if no]
                passed = [i for i, no in zip(items, refused, strict=True) if not no]
                results = iter([])
                if passed:
                    with lock:
                        r = upstream.post(self.path, json={"items": passed})
                    results = iter(r.json()["results"])
                answers = [
                    {"status": 400, "body": REFUSAL} if no else next(results) for no in refused
                ]
                self._reply(200, {"Content-Type": "application/json"}, {"results": answers})

            def _reply(self, status: int, headers: dict[str, str], body: Any) -> None:
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                answer(self, status, payload, headers)

        self._upstream = upstream
        self._server = LoopbackServer(Handler)
        self.url = self._server.url

    def close(self) -> None:
        self._server.close()
        self._upstream.close()


@pytest.fixture
def refusing_front(system: System) -> Iterator[RefusingFront]:
    """Workflow restarted to call the delivery service through the front, then restored."""
    stack = system.need_stack()
    front = RefusingFront(stack.url("delivery"))
    stack.stop("workflow")
    stack.extra_env["workflow"] = {**stack.extra_env.get("workflow", {}), "DELIVERY_URL": front.url}
    try:
        stack.start("workflow")
        stack.wait_ready("workflow")
        yield front
    finally:
        stack.stop("workflow")
        stack.extra_env["workflow"].pop("DELIVERY_URL", None)
        stack.start("workflow")
        stack.wait_ready("workflow")
        front.close()


def test_a_delivery_that_cannot_be_recorded_is_failed_with_the_reason_and_its_drone_freed(
    system: System, refusing_front: RefusingFront
) -> None:
    with system.client() as client:
        # Weeks ahead: the booking is still on its drone when the test looks.
        later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        body = {**GUIDE_REQUEST, "ownerId": OWNER, "pickupTime": later}
        r = client.post("/api/deliveryrequests", json=body)
        assert r.status_code == 202
        delivery_id = r.json()["deliveryId"]

        def failed() -> dict[str, Any] | None:
            answer = client.get(f"/api/deliveries/{delivery_id}/status")
            return answer.json() if answer.status_code == 200 else None

        status = eventually(failed, what="the delivery's status")
        assert status["stage"] == "Failed"
        delivery = client.get(f"/api/deliveries/{delivery_id}").json()

    assert status["lastKnownLocation"] == delivery["pickup"]
    assert delivery["failureReason"] == (
        "it could not be recorded: delivery answered 400 pickup: cannot be recorded"
    )
    assert delivery["owner"]["userId"] == OWNER
    assert delivery["droneId"] == ""

    # A drone had been booked for it, and is free again.
    [refused] = refusing_front.refused
    booked = refused["droneId"]
    assert booked
    with system.internal("dronescheduler") as scheduler:
        # Workflow records the failure first and frees the drone after: wait for the second.
        def released() -> dict[str, Any] | None:
            assignment = scheduler.get(f"/api/dronedeliveries/{delivery_id}").json()
            # Released, not cancelled: a newer request may still book it.
            return assignment if assignment["status"] == "Released" else None

        assignment = eventually(released, what="the drone freed")
        assert assignment["droneId"] == booked
        fleet = scheduler.get("/api/drones").json()
    holders = [d["id"] for d in fleet for w in d["schedule"] if w["deliveryId"] == delivery_id]
    assert holders == []

    # The message keeps its evidence for an operator.
    [dead] = eventually(lambda: dead_lettered(system, delivery_id), what="the dead letter")
    assert dead["reason"] == "Rejected"
    assert dead["description"].startswith("delivery rejected the request: 400")
