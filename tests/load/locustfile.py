"""Load scenarios for the public API, for Locust. Point them at any entry point:

    make loadtest HOST=http://<ingress-ip> USERS=50 SPAWN_RATE=10 DURATION=2m SCENARIO=original

`OriginalScenario` is the original README's load test: delivery requests at a steady rate.
`RealisticMix` is what clients do over a delivery's life: create it, poll its status, now
and then reschedule or cancel it, read it back. Select one with SCENARIO (original, mix) or
run both with SCENARIO=all.

Where the system runs (`docker compose --profile load up`, the chart's `load` component),
each run's HTML report is also written to LOAD_REPORT_DIR when the run stops, whether it
ran out of time or was stopped from the web UI.
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, constant_throughput, events, tag, task
from locust.env import Environment
from locust.html import get_html_report

PREFIX = os.environ.get("API_PREFIX", "/v0.1.0")  # the original guide's form
SIZES = ("Small", "Medium", "Large")
# In a cluster the target is the entry point's Service, named by the public host name.
HOST_HEADER = os.environ.get("LOAD_HOST_HEADER", "")
# Locust does not check certificates unless told to (LOAD_TLS_VERIFY=true).
TLS_VERIFY = os.environ.get("LOAD_TLS_VERIFY", "false").lower() == "true"


class ApiUser(FastHttpUser):
    """What both scenarios share: how they reach the entry point."""

    abstract = True
    default_headers = {"Host": HOST_HEADER} if HOST_HEADER else None
    insecure = not TLS_VERIFY


def delivery_request(owner: str) -> dict[str, Any]:
    pickup_in = timedelta(minutes=random.randint(5, 600))
    return {
        "confirmationRequired": random.choice(("None", "FingerPrint", "Picture", "Voice")),
        "deadline": "",
        "dropOffLocation": f"{47.5 + random.random() * 0.2:.5f},{-122.45 + random.random() * 0.2:.5f}",
        "expedited": random.random() < 0.2,
        "ownerId": owner,
        "packageInfo": {
            "packageId": f"pkg-{uuid.uuid4().hex[:12]}",
            "size": random.choice(SIZES),
            "tag": "load",
            "weight": round(random.uniform(0.5, 20), 2),
        },
        "pickupLocation": f"{47.5 + random.random() * 0.2:.5f},{-122.45 + random.random() * 0.2:.5f}",
        "pickupTime": (datetime.now(UTC) + pickup_in).isoformat(),
    }


class OriginalScenario(ApiUser):
    """POST /api/deliveryrequests at a steady rate per user (RATE requests/s, default 1)."""

    wait_time = constant_throughput(float(os.environ.get("RATE", "1")))
    weight = 1

    @tag("original")
    @task
    def request_delivery(self) -> None:
        with self.client.post(
            f"{PREFIX}/api/deliveryrequests",
            json=delivery_request(f"load-{uuid.uuid4().hex[:6]}"),
            name="POST /api/deliveryrequests",
            catch_response=True,
        ) as r:
            if r.status_code != 202:
                r.failure(f"expected 202, got {r.status_code}")


class RealisticMix(ApiUser):
    """One customer: creates deliveries, polls them, sometimes changes or cancels them."""

    wait_time = between(0.5, 2.0)
    weight = 1

    def on_start(self) -> None:
        self.owner = f"owner-{uuid.uuid4().hex[:8]}"
        self.deliveries: list[str] = []

    @tag("mix")
    @task(4)
    def create(self) -> None:
        r = self.client.post(
            f"{PREFIX}/api/deliveryrequests",
            json=delivery_request(self.owner),
            name="POST /api/deliveryrequests",
        )
        if r.status_code == 202:
            self.deliveries.append(r.json()["deliveryId"])
            del self.deliveries[:-20]  # a customer watches their recent deliveries

    @tag("mix")
    @task(8)
    def poll_status(self) -> None:
        if self.deliveries:
            delivery_id = random.choice(self.deliveries)
            # 404 until workflow has scheduled it: expected right after creation.
            with self.client.get(
                f"{PREFIX}/api/deliveries/{delivery_id}/status",
                name="GET /api/deliveries/{id}/status",
                catch_response=True,
            ) as r:
                if r.status_code in (200, 404):
                    r.success()

    @tag("mix")
    @task(3)
    def read(self) -> None:
        if self.deliveries:
            with self.client.get(
                f"{PREFIX}/api/deliveries/{random.choice(self.deliveries)}",
                name="GET /api/deliveries/{id}",
                catch_response=True,
            ) as r:
                if r.status_code in (200, 404):
                    r.success()

    @tag("mix")
    @task(1)
    def reschedule(self) -> None:
        if self.deliveries:
            self.client.patch(
                f"{PREFIX}/api/deliveryrequests/{random.choice(self.deliveries)}",
                json={"pickupTime": (datetime.now(UTC) + timedelta(hours=3)).isoformat()},
                name="PATCH /api/deliveryrequests/{id}",
            )

    @tag("mix")
    @task(1)
    def cancel(self) -> None:
        if self.deliveries:
            delivery_id = self.deliveries.pop(random.randrange(len(self.deliveries)))
            self.client.delete(
                f"{PREFIX}/api/deliveryrequests/{delivery_id}",
                name="DELETE /api/deliveryrequests/{id}",
            )


@events.test_stop.add_listener
def keep_report(environment: Environment, **_: Any) -> None:
    """One HTML report per run in LOAD_REPORT_DIR (unset: nothing written)."""
    folder = os.environ.get("LOAD_REPORT_DIR")
    if not folder:
        return
    path = Path(folder) / f"load-report-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.html"
    path.write_text(get_html_report(environment, show_download_link=False), encoding="utf-8")
    print(f"load report: {path}")
