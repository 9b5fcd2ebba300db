"""Record the samples in tests/compat/samples/ from the running code.

    .tools/bin/uv run --frozen python -m tests.compat.record

Starts the current services on the embedded footing (SQLite), sends a delivery, a
reschedule and a cancel through ingestion with workflow stopped, and takes each kind of
message off the queue as ingestion sent it (body and properties). Then workflow processes
them, with a delivery no drone can plan beside them, and each kind of document is taken
from the stores: a record, package, delivery, claim and drone in each state these reach.

Refresh the samples at a release (with tests/compat/previous-release), and whenever a
change adds a message or document version on purpose: commit the new samples beside the old
(`--keep` writes new files and leaves the old ones, which the current code must still read),
so every version that may still be on a queue or in a store stays in the repo.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from dronescheduler.models import Drone
from launcher.stack import Footing
from tests.compat.harness import CURRENT, Client, Releases

SAMPLES = Path(__file__).with_name("samples")


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _documents(data: Path, service: str, table: str) -> dict[str, dict[str, Any]]:
    rows = _rows(data / f"{service}.db", f"SELECT id, body FROM {table}")
    return {id: json.loads(body) for id, body in rows}


def record(out: Path, keep: bool) -> list[Path]:
    tmp = tempfile.mkdtemp(prefix="compat-record-")  # kept, with the logs, if this fails
    if True:
        data = Path(tmp) / "data"
        releases = Releases(Footing.embedded(data), Path(tmp) / "logs")
        client = Client(releases)
        try:
            releases.run(CURRENT, "package", "dronescheduler", "delivery", "ingestion")
            scheduled, rescheduled, unbooked = (client.create(n) for n in (1, 2, 3))
            failed = client.create(4, pickupTime="9999-12-31T00:00:00.000Z")
            client.reschedule(rescheduled, "47.7,-122.4")
            client.cancel(unbooked)
            messages = {
                json.loads(props)["operation"]: {
                    "properties": json.loads(props),
                    "body": json.loads(body),
                }
                for body, props in _rows(data / "queue.db", "SELECT body, properties FROM messages")
            }
            releases.run(CURRENT, "workflow")
            client.scheduled(scheduled, 1, "47.61,-122.31")
            client.scheduled(rescheduled, 2, "47.7,-122.4")
            client.cancelled(unbooked, booked=False)  # cancelled before it was booked
            releases.until(lambda: client.stage(failed) == "Failed", f"{failed} failed")
            cancelled = client.create(5)
            client.scheduled(cancelled, 5, "47.65,-122.35")
            client.cancel(cancelled)
            client.cancelled(cancelled)
        finally:
            releases.down()
        ids = {
            "scheduled": scheduled,
            "rescheduled": rescheduled,
            "cancelled": cancelled,
            "cancelled-unbooked": unbooked,
            "failed": failed,
        }
        samples: dict[str, Any] = {f"messages/{op}": m for op, m in messages.items()}
        records = _documents(data, "ingestion", "deliveryrequests")
        deliveries = _documents(data, "delivery", "deliveries")
        claims = _documents(data, "dronescheduler", "assignments")
        for state, id in ids.items():
            samples[f"deliveryrequests/{state}"] = records[id]
            samples[f"deliveries/{state}"] = deliveries[id]
            if id in claims:  # none for what no drone was booked for
                samples[f"assignments/{state}"] = claims[id]
        package = next(iter(_documents(data, "package", "packages").values()))
        samples["packages/package"] = package
        drones = _documents(data, "dronescheduler", "drones")
        busy = drones[deliveries[scheduled]["droneId"]]
        samples["drones/with-schedule"] = busy
        samples["drones/idle"] = next(d for d in drones.values() if not d["schedule"])
        # The layout before windows were kept as rows: windows as objects, with the API's
        # field names (what Drone.from_json still reads), made from the busy drone.
        samples["drones/windows-as-objects"] = Drone.from_json(busy).view()
    shutil.rmtree(tmp)
    written = []
    for name, body in samples.items():
        path = out / f"{name}.json"
        if keep and path.exists():
            path = path.with_name(f"{path.stem}.new.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLES)
    parser.add_argument("--keep", action="store_true", help="write beside existing samples")
    args = parser.parse_args()
    for path in record(args.out, args.keep):
        print(path)


if __name__ == "__main__":
    main()
