"""Restarts under load in the compose stack: workflow and delivery stop and start while
requests flow; every acknowledged request ends scheduled, exactly once.

scripts/compose-test.sh runs this against the stack it brought up (it sets COMPOSE_CMD).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import GUIDE_REQUEST, eventually

COMPOSE = shlex.split(os.environ.get("COMPOSE_CMD", ""))
BASE_URL = os.environ.get("E2E_BASE_URL", "http://127.0.0.1:8080")
REQUESTS = int(os.environ.get("RESTART_TEST_REQUESTS", "300"))

pytestmark = pytest.mark.skipif(
    not COMPOSE, reason="needs the compose stack of scripts/compose-test.sh (COMPOSE_CMD)"
)


def compose(*args: str) -> str:
    return subprocess.run(
        [*COMPOSE, *args], check=True, capture_output=True, text=True, timeout=300
    ).stdout


def post_with_retries(client: httpx.Client, owner: str) -> str | None:
    """POST until accepted, the same Idempotency-Key each time; None if never (bounded)."""
    body = {**GUIDE_REQUEST, "ownerId": owner, "pickupTime": datetime.now(UTC).isoformat()}
    body["packageInfo"] = {**body["packageInfo"], "packageId": f"pkg-{uuid.uuid4().hex[:10]}"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            r = client.post("/api/deliveryrequests", json=body, headers=key)
            if r.status_code == 202:
                return str(r.json()["deliveryId"])
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return None


def test_workflow_and_delivery_restarting_under_load_lose_and_duplicate_nothing() -> None:
    owner = f"restart-{uuid.uuid4().hex[:8]}"
    acknowledged: list[str] = []
    lock = threading.Lock()

    def send(_: int) -> None:
        with httpx.Client(base_url=BASE_URL, timeout=10) as client:
            delivery_id = post_with_retries(client, owner)
        if delivery_id:
            with lock:
                acknowledged.append(delivery_id)

    with ThreadPoolExecutor(8) as pool:
        sending = pool.map(send, range(REQUESTS))
        # While requests flow: workflow restarts, then delivery goes away for a while.
        eventually(lambda: len(acknowledged) >= REQUESTS // 4, within=120, what="load flowing")
        compose("restart", "workflow")
        eventually(lambda: len(acknowledged) >= REQUESTS // 2, within=120, what="load flowing")
        compose("stop", "delivery")
        down_from = time.monotonic()
        eventually(lambda: time.monotonic() - down_from >= 5, within=10, what="delivery down 5 s")
        compose("start", "delivery")
        list(sending)
    compose("up", "--wait", "--no-build", "delivery", "workflow")

    assert len(acknowledged) == REQUESTS, "some requests were never accepted"
    with httpx.Client(base_url=BASE_URL, timeout=10) as client:

        def all_scheduled() -> bool:
            pending = [
                i for i in acknowledged if client.get(f"/api/deliveries/{i}").status_code != 200
            ]
            return not pending

        eventually(all_scheduled, within=300, what="every acknowledged request scheduled")

    fleet: list[dict[str, Any]] = json.loads(
        compose(
            "exec",
            "-T",
            "dronescheduler",
            "python",
            "-c",
            "import urllib.request;"
            "print(urllib.request.urlopen('http://127.0.0.1:8080/api/drones').read().decode())",
        )
    )
    windows: dict[str, int] = {}
    for drone in fleet:
        for window in drone["schedule"]:
            windows[window["deliveryId"]] = windows.get(window["deliveryId"], 0) + 1
    # The guide's trip takes a quarter of an hour: no window has been flown and pruned yet.
    counts = [windows.get(i, 0) for i in acknowledged]
    print(
        f"\nacknowledged {len(acknowledged)}, scheduled {len(acknowledged)}, "
        f"booked once {counts.count(1)}, never booked {counts.count(0)}, "
        f"duplicated {sum(1 for c in counts if c > 1)}"
    )
    assert counts == [1] * len(acknowledged)
