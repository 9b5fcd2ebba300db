"""What workflow decides for messages it can judge on their own, before any downstream call,
and how long it waits before a retry."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chassis.http import ServiceClient
from chassis.queue import ReceivedMessage
from workflow.locations import ServiceArea
from workflow.service import DeadLetter, DeliveryWorkflow, Downstreams, retry_delay

GUIDE_MESSAGE: dict[str, Any] = {
    "deliveryId": "d-1",
    "requestedAt": "2024-05-08T12:00:00+00:00",
    "confirmationRequired": "None",
    "deadline": "",
    "dropOffLocation": "drop off",
    "expedited": True,
    "ownerId": "myowner",
    "packageInfo": {"packageId": "mypackage", "size": "Small", "tag": "mytag", "weight": 10},
    "pickupLocation": "my pickup",
    "pickupTime": "2019-05-08T20:00:00.000Z",
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def workflow() -> Iterator[DeliveryWorkflow]:
    # Real clients aimed at nothing: any call would fail, and none should be made. Made
    # once: each client loads the CA bundle, which takes a noticeable moment.
    url = f"http://127.0.0.1:{closed_port()}"
    downstreams = Downstreams(
        *(
            ServiceClient(name, url, timeout_seconds=0.5, attempts=1, max_wait_seconds=0.01)
            for name in ("package", "dronescheduler", "delivery")
        )
    )
    yield DeliveryWorkflow(
        downstreams, ServiceArea(47.6062, -122.3321, 10.0), unknown_delivery_grace=120.0
    )
    asyncio.run(downstreams.aclose())  # nothing was ever connected: no loop ties them


def message(body: bytes | dict[str, Any], **properties: str) -> ReceivedMessage:
    return ReceivedMessage(
        message_id="m-1",
        body=body if isinstance(body, bytes) else json.dumps(body).encode(),
        properties=properties,
        delivery_count=1,
        enqueued_at=time.time(),
    )


@pytest.mark.parametrize("operation", ["deliver", "Delivery", "DELETE", "", "reschedule "])
async def test_an_unknown_operation_is_dead_lettered(
    workflow: DeliveryWorkflow, operation: str
) -> None:
    outcome = await workflow.handle(message(GUIDE_MESSAGE, operation=operation))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "UnknownOperation"
    assert repr(operation) in outcome.description


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"deliveryId": "d-1"', b"\xff\xfe\x00garbage", b"{'single': 'quotes'}"],
)
async def test_a_body_that_is_not_json_is_dead_lettered(
    workflow: DeliveryWorkflow, body: bytes
) -> None:
    outcome = await workflow.handle(message(body, operation="delivery"))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "UndecodableBody"
    assert outcome.description


@pytest.mark.parametrize(
    ("operation", "body", "field"),
    [
        ("delivery", {k: v for k, v in GUIDE_MESSAGE.items() if k != "ownerId"}, "ownerId"),
        ("delivery", {**GUIDE_MESSAGE, "deliveryId": "a/b"}, "deliveryId"),
        ("delivery", {**GUIDE_MESSAGE, "pickupTime": "yesterday"}, "pickupTime"),
        ("reschedule", {"deliveryId": "d-1"}, "requestedAt"),
        ("reschedule", {"deliveryId": "d-1", "requestedAt": "now"}, "requestedAt"),
        ("cancel", {"requestedAt": "2024-05-08T12:00:00Z"}, "deliveryId"),
        ("cancel", [], "CancelRequested"),
        ("cancel", "d-1", "CancelRequested"),
    ],
)
async def test_json_that_is_not_the_message_is_dead_lettered(
    workflow: DeliveryWorkflow, operation: str, body: Any, field: str
) -> None:
    outcome = await workflow.handle(message(json.dumps(body).encode(), operation=operation))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "UndecodableBody"
    assert field in outcome.description
    assert len(outcome.description) <= 1000


async def test_a_message_without_an_operation_is_read_as_a_delivery(
    workflow: DeliveryWorkflow,
) -> None:
    # A cancel body lacks everything a delivery needs: proof it was read as a delivery.
    outcome = await workflow.handle(message({"deliveryId": "d-1", "requestedAt": "2024-05-08"}))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "UndecodableBody"
    assert "ownerId" in outcome.description
    assert "packageInfo" in outcome.description


async def test_a_pathologically_nested_body_is_dead_lettered(workflow: DeliveryWorkflow) -> None:
    outcome = await workflow.handle(message(b"[" * 100_000, operation="cancel"))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "UndecodableBody"


@pytest.mark.parametrize(
    ("delivery_count", "seconds"),
    [
        (0, 1.0),
        (1, 1.0),
        (2, 2.0),
        (3, 4.0),
        (4, 8.0),
        (5, 16.0),
        (6, 30.0),
        (7, 30.0),
        (500, 30.0),
    ],
)
def test_retries_back_off_exponentially_up_to_thirty_seconds(
    delivery_count: int, seconds: float
) -> None:
    assert retry_delay(delivery_count) == seconds


def test_retry_delays_never_shrink() -> None:
    delays = [retry_delay(n) for n in range(1, 50)]
    assert delays == sorted(delays)
    assert max(delays) == 30.0
