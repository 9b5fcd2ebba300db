"""Python calls per booked delivery through the drone scheduler's batch route, by part.

    uv run --frozen python -m tests.benchmarks.booking_calls [POSTGRES_URL]

The scheduler's app in this process (uvloop, as uvicorn runs it), on a database of its own
on the PostgreSQL server at POSTGRES_URL (default the local one; created, dropped at the
end), with BOOKING_FLEET drones; BOOKING_BATCHES batches of BOOKING_BATCH deliveries are
posted to POST /api/dronedeliveries/batch through httpx's ASGI transport, after a few
untimed ones. Each call is put down to the innermost part of the code on its stack:
planning, the route, the service, the store adapters, asyncpg, FastAPI, ... so that a
change to one part shows in its own line. The counts do not depend on the machine's load
(the planning ones depend on the random trips, seeded). CPU per booking is printed too; it
includes the client's side and does. A benchmark reports; it never fails for a figure.
"""

from __future__ import annotations

import collections
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from types import CodeType, FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvloop

from dronescheduler import service
from dronescheduler.config import Settings
from dronescheduler.main import create_app

BATCH = int(os.environ.get("BOOKING_BATCH", "8"))
BATCHES = int(os.environ.get("BOOKING_BATCHES", "60"))
FLEET = int(os.environ.get("BOOKING_FLEET", "20"))

# (part of a file's path, function name or None, part): the first that matches names it.
PARTS = [
    ("dronescheduler/models.py", None, "planning (models)"),
    ("dronescheduler/fleet.py", None, "planning (fleet)"),
    ("asyncpg/", None, "asyncpg"),
    ("chassis/documents/", None, "store adapters"),
    ("dronescheduler/pages.py", None, "paged drones"),
    ("dronescheduler/service.py", None, "service"),
    ("dronescheduler/router.py", None, "route"),
    ("chassis/batches.py", None, "batches"),
    ("fastapi/", None, "fastapi"),
    ("starlette/", None, "starlette"),
    ("prometheus_client", None, "prometheus"),
    ("opentelemetry", None, "telemetry"),
    ("chassis/", None, "chassis (middleware, metrics)"),
    ("httpx/", None, "client"),
    ("booking_calls.py", "_item", "client"),
]
SERVER_SIDE = {p for _, _, p in PARTS} - {"client"}


class CallsByPart:
    """sys.setprofile: each call counted for the innermost known part on its stack."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._parts: dict[CodeType, str] = {}

    def _part(self, code: CodeType) -> str:
        part = self._parts.get(code)
        if part is None:
            part = next(
                (p for f, n, p in PARTS if f in code.co_filename and n in (None, code.co_name)),
                "",
            )
            self._parts[code] = part
        return part

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event not in ("call", "c_call"):
            return
        f: FrameType | None = frame
        while f is not None:
            part = self._part(f.f_code)
            if part:
                self.counts[part] += 1
                return
            f = f.f_back
        self.counts["event loop, other"] += 1


def _item(rng: random.Random) -> dict[str, Any]:
    def spot() -> dict[str, float]:
        return {"latitude": 47.6 + rng.random() * 0.05, "longitude": -122.33 + rng.random() * 0.05}

    return {
        "deliveryId": f"d-{uuid.uuid4().hex[:12]}",
        "ownerId": "bench",
        "pickup": spot(),
        "dropoff": spot(),
        "packageDetail": {"id": f"p-{uuid.uuid4().hex[:10]}", "size": "Small"},
        "requestedAt": datetime.now(UTC).isoformat(),
        "version": 1,
    }


async def main(url: str) -> None:
    rng = random.Random(7)
    service._rng.seed(7)
    name = f"booking_calls_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(url)
    app = create_app(
        Settings(store_url=urlunsplit(parts._replace(path=f"/{name}")), fleet_size=FLEET)
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://scheduler") as client,
        ):

            async def batch() -> None:
                items = [_item(rng) for _ in range(BATCH)]
                r = await client.post("/api/dronedeliveries/batch", json={"items": items})
                statuses = [x["status"] for x in r.json()["results"]]
                if r.status_code != 200 or set(statuses) != {200}:
                    raise RuntimeError(f"batch answered {r.status_code}: {r.text[:500]}")

            for _ in range(10):  # the fleet read, the first pages
                await batch()
            started = time.process_time()
            for _ in range(BATCHES):
                await batch()
            cpu_ms = (time.process_time() - started) * 1000 / (BATCHES * BATCH)
            calls = CallsByPart()
            sys.setprofile(calls)
            try:
                for _ in range(BATCHES):
                    await batch()
            finally:
                sys.setprofile(None)
    finally:
        admin = await asyncpg.connect(url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
    n = BATCHES * BATCH
    print(f"{n} bookings in batches of {BATCH}, fleet {FLEET}: Python calls per booking")
    for part, count in calls.counts.most_common():
        print(f"  {count / n:8.1f}  {part}")
    planning = sum(c for p, c in calls.counts.items() if p.startswith("planning"))
    server = sum(c for p, c in calls.counts.items() if p in SERVER_SIDE) - planning
    print(f"  {server / n:8.1f}  the scheduler's side outside planning (no event loop)")
    print(f"CPU per booking, this process (client included): {cpu_ms:.3f} ms")


if __name__ == "__main__":
    uvloop.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
    )
