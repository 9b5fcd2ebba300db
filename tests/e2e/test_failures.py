"""Crashes in the middle of work: what was accepted is still done, exactly once in effect."""

from __future__ import annotations

import signal

from tests.e2e.conftest import GUIDE_REQUEST, System, eventually


def test_a_consumer_killed_mid_message_leaves_the_delivery_scheduled_once(system: System) -> None:
    stack = system.need_stack()
    # Delivery down: workflow gets as far as booking a drone, then keeps retrying the last step.
    stack.kill("delivery")
    try:
        with system.client() as client:
            r = client.post(
                "/api/deliveryrequests", json={**GUIDE_REQUEST, "ownerId": "owner-crash"}
            )
            assert r.status_code == 202
            delivery_id = r.json()["deliveryId"]
        with system.internal("dronescheduler") as scheduler:
            booked = eventually(
                lambda: (
                    scheduler.get(f"/api/dronedeliveries/{delivery_id}").status_code == 200
                    and scheduler.get(f"/api/dronedeliveries/{delivery_id}").json()
                ),
                what="a drone booked while delivery is down",
            )
            stack.signal(
                "workflow", signal.SIGKILL
            )  # mid-message: the message is locked, unsettled
            stack.processes["workflow"].wait(10)
    finally:
        stack.start("delivery")
        stack.wait_ready("delivery")
    stack.start("workflow")
    stack.wait_ready("workflow")

    with system.client() as client:
        delivery = eventually(
            lambda: (
                client.get(f"/api/deliveries/{delivery_id}").status_code == 200
                and client.get(f"/api/deliveries/{delivery_id}").json()
            ),
            within=60,
            what="the redelivered message completed",
        )
    assert delivery["droneId"] == booked["droneId"], "the retry booked a different drone"
    with system.internal("dronescheduler") as scheduler:
        fleet = scheduler.get("/api/drones").json()
    holders = [d["id"] for d in fleet for w in d["schedule"] if w["deliveryId"] == delivery_id]
    assert holders == [booked["droneId"]], f"windows for the delivery on {holders}"
