"""The drone scheduler's assignments in a row, in one process, no HTTP: how their cost grows
as the fleet's schedules fill up.

    [FLEET=20] uv run --frozen python -m tests.benchmarks.assignments [STORE_URL] [N]

STORE_URL defaults (also when empty) to a fresh SQLite file; for PostgreSQL give an empty
database of its own (the drones and assignments tables are created in it). Prints wall and
CPU time every 500, and on PostgreSQL the server's CPU time at the end.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from chassis.documents import connect_document_store
from dronescheduler import service
from dronescheduler.models import Location
from dronescheduler.schemas import DroneDeliveryRequest
from tests.benchmarks.bench import datastores_cpu_s

FLEET = int(os.environ.get("FLEET", "20"))  # FLEET=200 ...: how cost grows with the fleet
BASE = Location(47.6, -122.35)


async def assign_many(url: str, n: int) -> None:
    drones = await connect_document_store(url, service.DRONES)
    assignments = await connect_document_store(url, service.ASSIGNMENTS)
    try:
        await service.ensure_fleet(drones=drones, size=FLEET, base=BASE)
        rng = random.Random(7)

        def spot() -> Location:
            return Location(47.5 + rng.random() * 0.2, -122.45 + rng.random() * 0.2)

        wall, cpu = time.perf_counter(), time.process_time()
        server_before = datastores_cpu_s().get("postgres", 0.0)
        for k in range(1, n + 1):
            now = datetime.now(UTC)
            request = DroneDeliveryRequest.model_validate(
                {
                    "deliveryId": f"d-{uuid.uuid4().hex[:10]}",
                    "pickup": spot().to_json(),
                    "dropoff": spot().to_json(),
                    "packageDetail": {"id": "p1", "size": "Small"},
                    "expedited": rng.random() < 0.2,
                    "ownerId": "bench",
                    # As the system benchmark asks: picked up 5 to 600 minutes from now.
                    "pickupTime": now + timedelta(minutes=rng.randint(5, 600)),
                    "requestedAt": now,
                }
            )
            await service.assign(drones=drones, assignments=assignments, request=request)
            if k % 500 == 0 or k == n:
                print(
                    f"{k}: {time.perf_counter() - wall:.1f} s wall, "
                    f"{time.process_time() - cpu:.1f} s CPU",
                    flush=True,
                )
        if url.startswith("postgresql"):  # read before the pool closes its backends
            server = datastores_cpu_s().get("postgres", 0.0) - server_before
            print(f"PostgreSQL server: {server:.1f} s CPU")
    finally:
        await drones.close()
        await assignments.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="assignments-") as tmp:
        url = (sys.argv[1] if len(sys.argv) > 1 else "") or f"sqlite:///{tmp}/dronescheduler.db"
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
        print(f"{n} assignments on {FLEET} drones, store {url}")
        asyncio.run(assign_many(url, n))


if __name__ == "__main__":
    main()
