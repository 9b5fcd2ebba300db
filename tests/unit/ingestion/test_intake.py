"""Ingestion under concurrent accepts: they share store and queue calls, and each 202 stands
for its own record and message (SQLite files, as on the embedded footing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from chassis.documents import JSON, Document
from chassis.queue import OutgoingMessage
from ingestion.config import Settings
from ingestion.intake import Intake
from ingestion.main import create_app

N = 40


def request(n: int) -> dict[str, Any]:
    return {
        "confirmationRequired": "None",
        "deadline": "",
        "dropOffLocation": "drop off",
        "expedited": False,
        "ownerId": "owner",
        "packageInfo": {"packageId": f"p{n}", "size": "Small", "tag": "t", "weight": 1},
        "pickupLocation": "pickup",
        "pickupTime": "2030-05-08T20:00:00.000Z",
    }


async def test_concurrent_accepts_share_calls_and_each_is_stored_once(tmp_path: Path) -> None:
    app = create_app(
        Settings(
            queue_url=f"sqlite:///{tmp_path}/queue.db?queue=deliveryrequests",
            store_url=f"sqlite:///{tmp_path}/ingestion.db",
        )
    )
    record_batches: list[int] = []
    send_batches: list[int] = []
    async with app.router.lifespan_context(app):
        intake: Intake = app.state.intake
        store_create_many, queue_send_many = intake.store.create_many, intake.queue.send_many

        async def counted_creates(items: Sequence[tuple[str, JSON]]) -> list[Document | None]:
            record_batches.append(len(items))
            return await store_create_many(items)

        async def counted_sends(messages: Sequence[OutgoingMessage]) -> None:
            send_batches.append(len(messages))
            await queue_send_many(messages)

        intake.store.create_many = counted_creates  # type: ignore[method-assign]
        intake.queue.send_many = counted_sends  # type: ignore[method-assign]
        app.state.intake = intake = Intake(intake.queue, intake.store, intake.target)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://i") as client:
            answers = await asyncio.gather(
                *(client.post("/api/deliveryrequests", json=request(n)) for n in range(N))
            )
            # A repeat with an Idempotency-Key answers the same id and sends the same message.
            keyed = [
                await client.post(
                    "/api/deliveryrequests", json=request(0), headers={"Idempotency-Key": "k"}
                )
                for _ in range(2)
            ]
        assert [a.status_code for a in answers + keyed] == [202] * (N + 2)
        ids = [a.json()["deliveryId"] for a in answers]
        assert keyed[0].json()["deliveryId"] == keyed[1].json()["deliveryId"]
        for delivery_id in ids:
            assert await intake.store.get(delivery_id) is not None
        received = []
        while got := await intake.queue.receive(max_messages=100, wait_seconds=0.1):
            received += got
    # Each accepted once in the queue (the keyed repeat is the queue's duplicate to drop).
    assert sorted(m.message_id for m in received) == sorted([*ids, keyed[0].json()["deliveryId"]])
    assert {json.loads(m.body)["packageInfo"]["packageId"] for m in received} >= {
        f"p{n}" for n in range(N)
    }
    # Shared: fewer calls than requests, none larger than the bound.
    assert sum(record_batches) == N + 2 and sum(send_batches) == N + 2
    assert len(record_batches) < N and len(send_batches) < N
    assert max(record_batches + send_batches) <= intake.max_batch
