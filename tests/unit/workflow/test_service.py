"""What workflow decides for messages it can judge on their own, before any downstream call,
how long it waits before a retry, and what it does when a downstream refuses a delivery
(against a loopback server that answers as the services would)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from chassis.http import DownstreamUnavailable, ServiceClient
from chassis.queue import ReceivedMessage
from contracts.messages import DeliveryRequested
from contracts.routes import route_for
from tests.guide import GUIDE_BODY
from tests.loopback import LoopbackHandler, LoopbackServer, answer
from workflow.locations import ServiceArea, resolve
from workflow.service import (
    Complete,
    DeadLetter,
    DeliveryWorkflow,
    Downstreams,
    Places,
    RetryLater,
    retry_delay,
)

AREA = ServiceArea(47.6062, -122.3321, 10.0)

GUIDE_MESSAGE: dict[str, Any] = {
    "deliveryId": "d-1",
    "requestedAt": "2024-05-08T12:00:00+00:00",
    **GUIDE_BODY,
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
    yield DeliveryWorkflow(downstreams, AREA)
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


# ------------------------------------------------ downstreams that refuse a delivery
Call = tuple[str, str]  # method, path

PACKAGE_PUT: Call = ("PUT", "/api/packages/mypackage")
ASSIGN: Call = ("PUT", "/api/dronedeliveries/d-1")
# Freed because it failed (a newer request may book it again), or for good (a cancel).
RELEASE: Call = ("DELETE", "/api/dronedeliveries/d-1?version=1&final=false")
CANCEL_DRONE: Call = ("DELETE", "/api/dronedeliveries/d-1?version=1&final=true")
RECORD: Call = ("PUT", "/api/deliveries/d-1")
MARK_FAILED: Call = ("PUT", "/api/deliveries/d-1/failure")
CANCELLATION: Call = ("PUT", "/api/deliveries/d-1/cancellation")
PLAN = {
    "droneId": "drone-007",
    "departure": {
        "time": "2019-05-08T19:50:00+00:00",
        "location": {"altitude": 0.0, "latitude": 47.6, "longitude": -122.3},
    },
    "pickupETA": "2019-05-08T20:00:00+00:00",
    "deliveryETA": "2019-05-08T20:20:00+00:00",
}
# What workflow tells delivery of the guide's delivery when it was never scheduled.
GUIDE_UNSCHEDULED = {
    "ownerId": "myowner",
    "pickup": resolve("my pickup", AREA),
    "dropoff": resolve("drop off", AREA),
    "deadline": "",
    "expedited": True,
    "confirmationRequired": "None",
    "requestedAt": "2024-05-08T12:00:00Z",  # the instant the message has, as pydantic writes it
    "version": 1,
}
BAD_ALTITUDE = {
    "type": "about:blank",
    "title": "Bad Request",
    "status": 400,
    "detail": "invalid or missing: pickup.altitude",
    "errors": [{"field": "pickup.altitude", "message": "Input should be less than 10000"}],
}


# Each batch route's item as the single call it stands for (what the services do).
BATCH_ROUTES: dict[str, Any] = {
    "/api/packages/batch": lambda item: (
        f"/api/packages/{item['packageId']}",
        {k: v for k, v in item.items() if k != "packageId"},
    ),
    "/api/dronedeliveries/batch": lambda item: (f"/api/dronedeliveries/{item['deliveryId']}", item),
    "/api/deliveries/batch": lambda item: (f"/api/deliveries/{item['id']}", item),
}


class Downstream:
    """Package, drone scheduler and delivery on one loopback port: each (method, path)
    answers as scripted, everything the services would accept by default, and every request
    is kept in order with its JSON body. A batch route answers each item as its single call
    is scripted, and keeps each item as that call (and the batch, in `batches`); with
    `batch_routes` off it answers 405, as a service without them does, and a path in
    `fail_batches` answers the whole batch with that status."""

    def __init__(self) -> None:
        self.answers: dict[Call, tuple[int, Any]] = {}
        self.sent: list[tuple[str, str, Any]] = []
        self.batches: list[tuple[str, int]] = []  # path, items
        self.batch_routes = True
        self.fail_batches: dict[str, int] = {}
        downstream = self

        class Handler(LoopbackHandler):
            def respond(self) -> None:
                sent = json.loads(self.body() or b"null")
                if self.command == "POST" and self.path in BATCH_ROUTES:
                    self._batch(sent)
                    return
                downstream.sent.append((self.command, self.path, sent))
                status, body = downstream.answers.get((self.command, self.path), (404, None))
                payload = b"" if status == 204 else json.dumps(body).encode()
                answer(self, status, payload, {"Content-Type": "application/json"})

            def _batch(self, sent: Any) -> None:
                if not downstream.batch_routes:
                    answer(self, 405, b'{"detail": "Method Not Allowed"}')
                    return
                if self.path in downstream.fail_batches:
                    status = downstream.fail_batches[self.path]
                    answer(self, status, json.dumps({"status": status}).encode())
                    return
                downstream.batches.append((self.path, len(sent["items"])))
                results = []
                for item in sent["items"]:
                    path, body = BATCH_ROUTES[self.path](item)
                    downstream.sent.append(("PUT", path, body))
                    status, said = downstream.answers.get(("PUT", path), (404, None))
                    results.append({"status": status, "body": None if status == 204 else said})
                payload = json.dumps({"results": results}).encode()
                answer(self, 200, payload, {"Content-Type": "application/json"})

        self._server = LoopbackServer(Handler)
        self.url = self._server.url

    def reset(self) -> None:
        self.sent.clear()
        self.batches.clear()
        self.batch_routes = True
        self.fail_batches = {}
        self.answers = {
            PACKAGE_PUT: (201, None),
            ASSIGN: (200, PLAN),
            RECORD: (201, None),
            MARK_FAILED: (201, None),
            CANCELLATION: (201, None),
            RELEASE: (204, None),
            CANCEL_DRONE: (204, None),
        }

    def calls(self) -> list[Call]:
        return [(method, path) for method, path, _ in self.sent]

    def body_of(self, call: Call) -> Any:
        [body] = [b for m, p, b in self.sent if (m, p) == call]
        return body

    def close(self) -> None:
        self._server.close()


@pytest.fixture(scope="module")
def downstream() -> Iterator[Downstream]:
    server = Downstream()
    yield server
    server.close()


@pytest.fixture
async def scripted(downstream: Downstream) -> AsyncIterator[DeliveryWorkflow]:
    # Clients per test: once connected, a client belongs to its test's event loop.
    downstream.reset()
    downstreams = Downstreams(
        *(
            ServiceClient(
                name, downstream.url, timeout_seconds=5, attempts=2, max_wait_seconds=0.01
            )
            for name in ("package", "dronescheduler", "delivery")
        )
    )
    yield DeliveryWorkflow(downstreams, AREA)
    await downstreams.aclose()


async def test_a_delivery_the_delivery_service_refuses_is_marked_failed_then_its_drone_freed(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[RECORD] = (400, BAD_ALTITUDE)
    outcome = await scripted.handle(message(GUIDE_MESSAGE, operation="delivery"))

    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "Rejected"
    assert outcome.description.startswith("delivery rejected the request: 400")
    assert downstream.calls() == [PACKAGE_PUT, ASSIGN, RECORD, MARK_FAILED, RELEASE]
    assert downstream.body_of(MARK_FAILED) == {
        **GUIDE_UNSCHEDULED,
        "reason": "it could not be recorded: delivery answered 400 pickup.altitude: "
        "Input should be less than 10000",
    }


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_delivery_the_drone_scheduler_refuses_is_marked_failed_and_never_recorded(
    scripted: DeliveryWorkflow, downstream: Downstream, status: int
) -> None:
    downstream.answers[ASSIGN] = (status, {"status": status, "detail": "no such route"})
    outcome = await scripted.handle(message(GUIDE_MESSAGE, operation="delivery"))

    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "Rejected"
    assert f"dronescheduler rejected the request: {status}" in outcome.description
    # Released all the same: an earlier attempt may have booked one.
    assert downstream.calls() == [PACKAGE_PUT, ASSIGN, MARK_FAILED, RELEASE]
    reason = downstream.body_of(MARK_FAILED)["reason"]
    assert reason == f"no drone could be assigned: dronescheduler answered {status} no such route"


async def test_while_the_failure_cannot_be_recorded_the_drone_stays_booked_for_the_retry(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[RECORD] = (400, BAD_ALTITUDE)
    downstream.answers[MARK_FAILED] = (503, {"detail": "down"})
    outcome = await scripted.handle(message(GUIDE_MESSAGE, operation="delivery"))

    assert isinstance(outcome, RetryLater)
    assert "delivery unavailable" in outcome.reason
    # Released, the booking would answer the retry "cancelled", and it would never fail.
    assert RELEASE not in downstream.calls()


async def test_a_retry_after_the_release_failed_records_the_failure_again_and_frees_the_drone(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[RECORD] = (400, BAD_ALTITUDE)
    downstream.answers[RELEASE] = (503, {"detail": "down"})
    first = await scripted.handle(message(GUIDE_MESSAGE, operation="delivery"))
    assert isinstance(first, RetryLater)
    assert MARK_FAILED in downstream.calls()

    downstream.sent.clear()
    downstream.answers[MARK_FAILED] = (204, None)  # already recorded: the same again
    downstream.answers[RELEASE] = (204, None)
    again = await scripted.handle(message(GUIDE_MESSAGE, operation="delivery"))
    assert isinstance(again, DeadLetter)
    assert downstream.calls() == [PACKAGE_PUT, ASSIGN, RECORD, MARK_FAILED, RELEASE]


async def test_a_failure_the_delivery_service_refuses_too_is_in_the_dead_letter(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[ASSIGN] = (400, BAD_ALTITUDE)
    downstream.answers[MARK_FAILED] = (400, BAD_ALTITUDE)
    outcome = await scripted.handle(message(GUIDE_MESSAGE, operation="delivery"))

    assert isinstance(outcome, DeadLetter)
    assert outcome.description.startswith("dronescheduler rejected the request: 400")
    assert "the failure could not be recorded: delivery rejected the request: 400" in (
        outcome.description
    )
    assert len(outcome.description) <= 1000
    assert downstream.calls()[-1] == RELEASE


async def test_a_delivery_cancelled_meanwhile_is_not_a_failure(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[ASSIGN] = (409, {"detail": "cancelled"})
    assert isinstance(await scripted.handle(message(GUIDE_MESSAGE)), Complete)
    assert downstream.calls() == [PACKAGE_PUT, ASSIGN]

    downstream.reset()
    downstream.answers[RECORD] = (409, {"detail": "cancelled"})
    assert isinstance(await scripted.handle(message(GUIDE_MESSAGE)), Complete)
    assert downstream.calls() == [PACKAGE_PUT, ASSIGN, RECORD, RELEASE]


GUIDE = DeliveryRequested.model_validate(GUIDE_MESSAGE)
POINT = {"altitude": 0.0, "latitude": 47.6, "longitude": -122.3}


async def test_marking_a_cancelled_delivery_failed_leaves_it_cancelled_quietly(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[MARK_FAILED] = (409, {"detail": "delivery 'd-1' was cancelled"})
    await scripted.mark_failed(GUIDE, Places(POINT, POINT), "x" * 5000)
    sent = downstream.body_of(MARK_FAILED)
    assert len(sent["reason"]) == 1000  # what the delivery service keeps
    assert sent["version"] == 1


async def test_marking_failed_while_the_delivery_service_is_out_is_unavailable(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[MARK_FAILED] = (503, {"detail": "down"})
    with pytest.raises(DownstreamUnavailable):
        await scripted.mark_failed(GUIDE, Places(POINT, POINT), "no drone")
    assert downstream.calls() == [MARK_FAILED, MARK_FAILED]  # retried in place first


# ------------------------------------------------ versions, cancels, failures that repeat


def versioned(version: int, **changes: Any) -> dict[str, Any]:
    return {**GUIDE_MESSAGE, **changes, "version": version}


async def test_a_cancel_frees_the_drone_and_records_it_without_reading_the_delivery(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    # Nothing is known of d-1 yet (the cancel came first): no read, no wait; both final.
    outcome = await scripted.handle(message(versioned(1), operation="cancel"))
    assert isinstance(outcome, Complete)
    assert downstream.calls() == [CANCEL_DRONE, CANCELLATION]
    assert downstream.body_of(CANCELLATION) == GUIDE_UNSCHEDULED


@pytest.mark.parametrize("operation", ["delivery", "reschedule", "cancel"])
async def test_workflow_calls_only_internal_routes_which_need_no_token(
    scripted: DeliveryWorkflow, downstream: Downstream, operation: str
) -> None:
    # A public route needs the caller's token when authentication is on; workflow has none.
    downstream.answers[RECORD] = (400, BAD_ALTITUDE)  # the failure path too
    await scripted.handle(message(versioned(2), operation=operation))
    assert downstream.calls()
    for method, path in downstream.calls():
        assert route_for(method, path.partition("?")[0]) is None, (method, path)


async def test_a_reschedule_records_the_whole_delivery_at_its_version(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    body = versioned(3, dropOffLocation="47.6,-122.31")
    assert isinstance(await scripted.handle(message(body, operation="reschedule")), Complete)
    assert downstream.body_of(ASSIGN)["version"] == 3
    recorded = downstream.body_of(RECORD)
    assert recorded["version"] == 3
    assert recorded["rescheduled"] is True
    assert recorded["dropoff"] == {"altitude": 0.0, "latitude": 47.6, "longitude": -122.31}
    assert recorded["pickup"] == resolve("my pickup", AREA)


async def test_a_plan_for_a_newer_version_is_not_recorded_as_this_one(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[ASSIGN] = (200, {**PLAN, "version": 4})
    assert isinstance(await scripted.handle(message(versioned(3))), Complete)
    assert downstream.calls() == [PACKAGE_PUT, ASSIGN]


def delivered(body: dict[str, Any], count: int, **properties: str) -> ReceivedMessage:
    m = message(body, **properties)
    m.delivery_count = count
    return m


async def test_a_server_error_is_retried_later_without_holding_and_at_the_last_delivery_fails(
    scripted: DeliveryWorkflow, downstream: Downstream
) -> None:
    downstream.answers[ASSIGN] = (500, {"status": 500, "detail": "the error was logged"})
    first = await scripted.handle(delivered(GUIDE_MESSAGE, 1))
    assert isinstance(first, RetryLater)
    assert first.hold is False  # a deterministic error: holding would only delay others
    assert "dronescheduler failed on the request: 500" in first.reason
    assert downstream.calls().count(ASSIGN) == 1  # not retried in place either

    downstream.sent.clear()
    last = await scripted.handle(delivered(GUIDE_MESSAGE, 10))
    assert isinstance(last, DeadLetter)
    assert downstream.calls() == [PACKAGE_PUT, ASSIGN, MARK_FAILED, RELEASE]
    reason = downstream.body_of(MARK_FAILED)["reason"]
    assert reason == "it failed every time: dronescheduler answered 500 the error was logged"
