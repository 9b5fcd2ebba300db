"""Messages handled together share one call per stage, and each still gets the outcome it
would have got alone: against a loopback server that answers each batch item as the
service's single call is scripted (tests/unit/workflow/test_service.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from chassis.queue import ReceivedMessage
from tests.unit.workflow import test_service as outcomes
from tests.unit.workflow.test_service import GUIDE_MESSAGE, PLAN, Downstream
from workflow.service import (
    Complete,
    DeadLetter,
    DeliveryWorkflow,
    Outcome,
    RetryLater,
)
from workflow.stages import Gatherer

MAX_DELIVERIES = 10  # the workflow's default
PACKAGES, DRONES, DELIVERIES = (
    "/api/packages/batch",
    "/api/dronedeliveries/batch",
    "/api/deliveries/batch",
)


def message(n: int, *, delivery_count: int = 1) -> ReceivedMessage:
    body = {
        **GUIDE_MESSAGE,
        "deliveryId": f"d-{n}",
        "packageInfo": {**GUIDE_MESSAGE["packageInfo"], "packageId": f"p-{n}"},
    }
    return ReceivedMessage(
        message_id=f"m-{n}",
        body=json.dumps(body).encode(),
        properties={"operation": "delivery"},
        delivery_count=delivery_count,
        enqueued_at=time.time(),
    )


def script(downstream: Downstream, n: int, **answers: tuple[int, Any]) -> None:
    """Delivery d-n answered as the services would accept it, but for `answers` (by stage)."""
    calls = {
        "package": ("PUT", f"/api/packages/p-{n}"),
        "assign": ("PUT", f"/api/dronedeliveries/d-{n}"),
        "record": ("PUT", f"/api/deliveries/d-{n}"),
        "failure": ("PUT", f"/api/deliveries/d-{n}/failure"),
        "release": ("DELETE", f"/api/dronedeliveries/d-{n}?version=1&final=false"),
    }
    defaults = {
        "package": (201, None),
        "assign": (200, PLAN),
        "record": (201, None),
        "failure": (201, None),
        "release": (204, None),
    }
    for stage, call in calls.items():
        downstream.answers[call] = answers.get(stage, defaults[stage])


# The outcomes tests' loopback downstream and workflow, by their fixtures' names.
downstream = outcomes.downstream
workflow = outcomes.scripted


async def handled_together(
    workflow: DeliveryWorkflow, messages: list[ReceivedMessage], *, max_size: int = 32
) -> list[Outcome]:
    gatherer = Gatherer(workflow.batch, workflow.handle, max_size=max_size, gather_seconds=0.05)
    return list(await asyncio.gather(*(gatherer.handle(m) for m in messages)))


PROBLEM = {"status": 400, "detail": "invalid or missing: pickup", "errors": []}


async def test_each_message_of_a_batch_gets_the_outcome_it_would_get_alone(
    workflow: DeliveryWorkflow, downstream: Downstream
) -> None:
    script(downstream, 1)
    script(downstream, 2, assign=(409, {"detail": "cancelled"}))
    script(downstream, 3, assign=(422, {"status": 422, "detail": "no drone"}))
    script(downstream, 4, record=(503, {"detail": "out"}))
    script(downstream, 5, record=(500, {"detail": "bug"}))
    script(downstream, 6, record=(409, {"detail": "cancelled"}))
    script(downstream, 7, record=(400, PROBLEM))
    script(downstream, 8, package=(500, {"detail": "bug"}))
    messages = [message(n) for n in range(1, 9)]
    messages.append(message(9, delivery_count=MAX_DELIVERIES))
    script(downstream, 9, record=(500, {"detail": "bug"}))

    outcomes = await handled_together(workflow, messages)

    assert outcomes[0] == Complete()
    assert outcomes[1] == Complete("cancelled, or a newer request holds it")
    assert isinstance(outcomes[2], DeadLetter) and "dronescheduler rejected" in (
        outcomes[2].description
    )
    assert isinstance(outcomes[3], RetryLater) and outcomes[3].hold
    assert "delivery unavailable: HTTP 503" in outcomes[3].reason
    assert isinstance(outcomes[4], RetryLater) and not outcomes[4].hold
    assert outcomes[5] == Complete("cancelled or failed while being scheduled")
    assert isinstance(outcomes[6], DeadLetter) and outcomes[6].reason == "Rejected"
    assert isinstance(outcomes[7], RetryLater) and not outcomes[7].hold
    assert isinstance(outcomes[8], DeadLetter)  # failed at its last delivery: marked Failed

    # One call per stage for all that reached it; the rest single calls, as before.
    assert downstream.batches == [(PACKAGES, 9), (DRONES, 8), (DELIVERIES, 6)]
    calls = downstream.calls()
    assert ("PUT", "/api/deliveries/d-3/failure") in calls  # 422: given up
    assert ("DELETE", "/api/dronedeliveries/d-3?version=1&final=false") in calls
    assert ("DELETE", "/api/dronedeliveries/d-6?version=1&final=false") in calls  # 409
    assert ("PUT", "/api/deliveries/d-7/failure") in calls  # 400 recording: given up
    assert ("PUT", "/api/deliveries/d-9/failure") in calls  # last delivery
    assert ("PUT", "/api/deliveries/d-5/failure") not in calls  # not its last: retried
    assert not any(path.endswith("d-1/failure") for _, path in calls)


async def test_a_batch_is_at_most_its_size(
    workflow: DeliveryWorkflow, downstream: Downstream
) -> None:
    for n in range(1, 6):
        script(downstream, n)
    outcomes = await handled_together(workflow, [message(n) for n in range(1, 6)], max_size=2)
    assert outcomes == [Complete()] * 5
    assert sorted(n for path, n in downstream.batches if path == PACKAGES) == [1, 2, 2]


@pytest.mark.parametrize(
    ("route", "status", "hold", "said"),
    [
        (DRONES, 503, True, "dronescheduler unavailable"),
        (DELIVERIES, 500, False, "delivery failed"),
    ],
)
async def test_a_whole_batch_refused_is_each_messages_answer(
    workflow: DeliveryWorkflow,
    downstream: Downstream,
    route: str,
    status: int,
    hold: bool,
    said: str,
) -> None:
    # An outage is held and retried; a service failing on the request is retried later.
    for n in (1, 2):
        script(downstream, n)
    downstream.fail_batches = {route: status}
    outcomes = await handled_together(workflow, [message(1), message(2)])
    for outcome in outcomes:
        assert isinstance(outcome, RetryLater) and outcome.hold is hold, outcome
        assert said in outcome.reason
    if route == DRONES:
        assert ("PUT", "/api/deliveries/d-1") not in downstream.calls()


async def test_services_without_batch_routes_get_the_single_calls(
    workflow: DeliveryWorkflow, downstream: Downstream
) -> None:
    script(downstream, 1)
    script(downstream, 2, assign=(422, {"status": 422, "detail": "no drone"}))
    downstream.batch_routes = False
    outcomes = await handled_together(workflow, [message(1), message(2)])
    assert outcomes[0] == Complete()
    assert isinstance(outcomes[1], DeadLetter)
    assert downstream.batches == []
    assert ("PUT", "/api/packages/p-1") in downstream.calls()
    assert ("PUT", "/api/deliveries/d-1") in downstream.calls()


async def test_a_message_cancelled_in_its_batch_holds_up_none_of_the_others(
    workflow: DeliveryWorkflow, downstream: Downstream
) -> None:
    for n in (1, 2, 3):
        script(downstream, n)
    gatherer = Gatherer(workflow.batch, workflow.handle, max_size=32, gather_seconds=0.05)
    tasks = [asyncio.create_task(gatherer.handle(message(n))) for n in (1, 2, 3)]
    await asyncio.sleep(0)  # all three joined the batch
    tasks[1].cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(tasks[0], tasks[2]), timeout=10)
    assert outcomes == [Complete(), Complete()]
    assert tasks[1].cancelled()
    assert (PACKAGES, 2) in downstream.batches
