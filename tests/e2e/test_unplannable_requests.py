"""What the original accepted and no drone can fly: a pickup time at either end of the
calendar. The original never planned a pickup time; here one that cannot be planned must
still end answered: the delivery `Failed` with the reason (or, for a time long past, flown
as soon as possible), never left waiting or lost.

Before the drone scheduler answered these with a 422, its 500 (taken by workflow for an
outage) held them for retries and opened the breaker for every delivery: a file of their
own, run after the others, keeps such a regression from showing up as other tests' failures.
"""

from __future__ import annotations

from tests.e2e.conftest import System, eventually
from tests.e2e.original_clients import (
    SCHEDULED,
    delivery_of,
    ingestion_it_delivery,
    post,
    stage_becomes,
    with_changes,
)


def test_a_pickup_time_no_drone_can_plan_ends_failed_with_the_reason(system: System) -> None:
    body = with_changes(ingestion_it_delivery(), pickupTime="9999-12-31T00:00:00.000Z")
    with system.client() as client:
        delivery_id = post(client, body)["deliveryId"]
        status = stage_becomes(client, delivery_id, "Failed")
        delivery = delivery_of(client, delivery_id)
    assert "pickupTime" in (delivery["failureReason"] or ""), delivery
    assert delivery["deadline"] == body["deadline"]
    assert status["pickupETA"] and status["deliveryETA"]


def test_a_pickup_time_long_past_is_flown_now_or_failed_never_stuck(system: System) -> None:
    # A past time means "as soon as possible" (the guide's is from 2019); one at the start of
    # the calendar is either that, or a failure with its reason: never left unanswered.
    # As epoch milliseconds: the first instant a date can hold, 0001-01-01T00:00:00Z.
    body = with_changes(ingestion_it_delivery(), pickupTime=-62135596800000)
    with system.client() as client:
        delivery_id = post(client, body)["deliveryId"]

        def settled() -> str | None:
            r = client.get(f"/api/deliveries/{delivery_id}/status")
            return r.json()["stage"] if r.status_code == 200 else None

        stage = eventually(settled, within=60.0, what="the delivery scheduled or failed")
        delivery = delivery_of(client, delivery_id)
    assert stage in (*SCHEDULED, "Failed")
    assert (stage == "Failed") == bool(delivery["failureReason"])
