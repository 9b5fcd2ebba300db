"""Ingestion's use cases through its own app on the embedded store and queue: a request is
acknowledged only once its message is queued, an Idempotency-Key makes a retried POST the
same delivery, and each change is the whole request at its next version."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chassis.queue import QueueOptions, ReceivedMessage, connect_message_queue
from ingestion.config import Settings
from ingestion.main import create_app
from tests.guide import GUIDE_BODY, guide_body


class Ingestion:
    def __init__(self, folder: Path) -> None:
        self.queue_url = f"sqlite:///{folder}/queue.db?queue=ingestion-test"
        settings = Settings(queue_url=self.queue_url, store_url=f"sqlite:///{folder}/i.db")
        self.client = TestClient(create_app(settings))

    def queued(self) -> list[ReceivedMessage]:
        """Every message on the queue now, in order (each completed: read once)."""

        async def drain() -> list[ReceivedMessage]:
            queue = await connect_message_queue(self.queue_url, QueueOptions(lock_seconds=30))
            try:
                found: list[ReceivedMessage] = []
                while batch := await queue.receive(max_messages=16, wait_seconds=0.2):
                    for message in batch:
                        await queue.complete(message)
                    found += batch
                return found
            finally:
                await queue.close()

        return asyncio.run(drain())


@pytest.fixture
def ingestion(tmp_path: Path) -> Iterator[Ingestion]:
    service = Ingestion(tmp_path)
    with service.client:
        yield service


def body_of(message: ReceivedMessage) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(message.body)
    return parsed


def test_an_accepted_request_is_on_the_queue_as_its_first_version(ingestion: Ingestion) -> None:
    r = ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY)
    assert r.status_code == 202, r.text
    delivery_id = r.json()["deliveryId"]
    assert r.headers["Location"] == f"/api/deliveries/{delivery_id}"
    [message] = ingestion.queued()
    assert (message.message_id, message.properties["operation"]) == (delivery_id, "delivery")
    body = body_of(message)
    assert (body["deliveryId"], body["version"], body["ownerId"]) == (delivery_id, 1, "myowner")
    assert body["packageInfo"]["packageId"] == "mypackage"


def test_two_posts_without_a_key_are_two_deliveries(ingestion: Ingestion) -> None:
    ids = {ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY).json()["deliveryId"]}
    ids.add(ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY).json()["deliveryId"])
    assert len(ids) == 2
    assert {m.message_id for m in ingestion.queued()} == ids


def test_a_post_retried_with_its_key_is_the_same_delivery_sent_again_the_same(
    ingestion: Ingestion,
) -> None:
    key = {"Idempotency-Key": "order-42"}
    first = ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY, headers=key)
    again = ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["deliveryId"] == again.json()["deliveryId"]
    # The resend is the very message first sent (same id and time), which the queue's
    # duplicate detection drops.
    [message] = ingestion.queued()
    assert message.message_id == first.json()["deliveryId"]


def test_a_key_is_the_owner_s_own(ingestion: Ingestion) -> None:
    key = {"Idempotency-Key": "shared"}
    mine = ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY, headers=key)
    theirs = ingestion.client.post(
        "/api/deliveryrequests", json=guide_body(ownerId="someone-else"), headers=key
    )
    assert mine.json()["deliveryId"] != theirs.json()["deliveryId"]


def test_a_key_reused_for_another_request_is_refused(ingestion: Ingestion) -> None:
    key = {"Idempotency-Key": "order-7"}
    assert ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY, headers=key).is_success
    r = ingestion.client.post(
        "/api/deliveryrequests", json=guide_body(dropOffLocation="elsewhere"), headers=key
    )
    assert r.status_code == 422
    assert "Idempotency-Key" in r.json()["detail"]
    assert len(ingestion.queued()) == 1


def test_changes_are_the_whole_request_at_each_next_version(ingestion: Ingestion) -> None:
    delivery_id = ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY).json()[
        "deliveryId"
    ]
    r = ingestion.client.patch(
        f"/api/deliveryrequests/{delivery_id}", json={"dropOffLocation": "47.6,-122.3"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"deliveryId": delivery_id, "dropOffLocation": "47.6,-122.3"}
    r = ingestion.client.patch(
        f"/api/deliveryrequests/{delivery_id}", json={"pickupLocation": "the depot"}
    )
    assert r.status_code == 200, r.text
    assert ingestion.client.delete(f"/api/deliveryrequests/{delivery_id}").status_code == 204
    created, moved, picked, cancelled = ingestion.queued()
    assert [m.message_id for m in (moved, picked, cancelled)] == [
        f"{delivery_id}.v2",
        f"{delivery_id}.v3",
        f"{delivery_id}.v4",
    ]
    assert [m.properties["operation"] for m in (created, moved, picked, cancelled)] == [
        "delivery",
        "reschedule",
        "reschedule",
        "cancel",
    ]
    last = body_of(cancelled)
    assert (last["version"], last["dropOffLocation"], last["pickupLocation"]) == (
        4,
        "47.6,-122.3",
        "the depot",
    )
    assert last["packageInfo"] == body_of(created)["packageInfo"]


def test_a_cancelled_delivery_cannot_be_rescheduled_and_a_repeated_cancel_resends(
    ingestion: Ingestion,
) -> None:
    delivery_id = ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY).json()[
        "deliveryId"
    ]
    assert ingestion.client.delete(f"/api/deliveryrequests/{delivery_id}").status_code == 204
    r = ingestion.client.patch(f"/api/deliveryrequests/{delivery_id}", json={"deadline": "soon"})
    assert r.status_code == 409
    assert "cancelled" in r.json()["detail"]
    assert ingestion.client.delete(f"/api/deliveryrequests/{delivery_id}").status_code == 204
    # The repeat is the same version's message: the queue drops the duplicate.
    assert [m.message_id for m in ingestion.queued()] == [delivery_id, f"{delivery_id}.v2"]


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_an_id_never_issued_is_404_and_queues_nothing(ingestion: Ingestion, method: str) -> None:
    r = ingestion.client.request(
        method, "/api/deliveryrequests/never-issued", json={"deadline": "soon"}
    )
    assert r.status_code == 404
    assert "never-issued" in r.json()["detail"]
    assert ingestion.queued() == []


def test_a_reschedule_that_changes_nothing_is_400(ingestion: Ingestion) -> None:
    delivery_id = ingestion.client.post("/api/deliveryrequests", json=GUIDE_BODY).json()[
        "deliveryId"
    ]
    r = ingestion.client.patch(f"/api/deliveryrequests/{delivery_id}", json={})
    assert r.status_code == 400
    assert "nothing to reschedule" in r.json()["detail"]
    assert len(ingestion.queued()) == 1
