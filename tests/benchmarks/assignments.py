"""The drone scheduler's bookings in one process, no HTTP: what one costs as the work grows.

    uv run --frozen python -m tests.benchmarks.assignments [STORE_URL]
    [FLEET=20] uv run --frozen python -m tests.benchmarks.assignments STORE_URL N

Without N: CPU per booking against the backlog (10, 100, 1,000 future windows on each drone,
on a fleet of ASSIGN_BACKLOG_FLEET drones) and against the fleet size (20 to 20,000 drones,
ASSIGN_FLEET_BACKLOG windows each), every cell in this run, as a table with the ratios that
issue 17 sets targets for, and results/bench/assignments-scaling.json and .png. Each cell's
fleet is written straight to a fresh store (drones built with the scheduler's own models,
their windows spaced ASSIGN_WINDOW_SPACING_MINUTES apart, each a short trip near the drone's
home), so that set-up does not book them one by one; then one booking reads the fleet
(untimed: a scheduler process does that once), and up to ASSIGN_BOOKINGS bookings through
`service.assign` are timed, fewer on the large fleets (ASSIGN_LARGE_FLEET_BOOKINGS) and
never more than ASSIGN_CELL_SECONDS of wall time a cell: the table says how many each had.

How dense the backlog is matters as much as how long: a trip in this benchmark's area takes
up to about half an hour, so with windows 30 minutes apart most gaps cannot hold one and
planning walks past them, on every drone, up to the soonest drop-off found (on main 10 ->
1,000 windows cost 25-35x more per booking on SQLite; with ASSIGN_WINDOW_SPACING_MINUTES=120,
5x). The default is the denser, harder case. The fleet series puts every drone within reach
of every trip; a booking looks at the drones nearest the pickup (dronescheduler/fleet.py),
and the scheduler lists the fleet again every FLEET_RESYNC_SECONDS, not per booking: a
cell's timed bookings seldom last that long, so that listing is mostly not in the figure.

With N: N assignments in a row on FLEET empty drones, wall and CPU time every 500.

STORE_URL defaults (also when empty) to fresh SQLite files. For PostgreSQL give a server's
URL: each cell gets a database of its own on it (created, and dropped at the end), and the
CPU of that database's backends is counted with the booking's. A benchmark reports; it
never fails for a figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chassis.documents import DocumentStore, connect_document_store
from dronescheduler import service
from dronescheduler.config import Settings
from dronescheduler.models import (
    CRUISE_MPH,
    LOADING,
    Drone,
    Location,
    Window,
    drone_id,
    fleet_homes,
    miles_between,
)
from dronescheduler.pages import PAGES, PagedDrones
from dronescheduler.schemas import DroneDeliveryRequest
from tests.benchmarks.bench import RESULTS, _cpu_s, datastores_cpu_s

FLEET = int(os.environ.get("FLEET", "20"))  # the N-in-a-row mode's fleet
BASE = Location(47.6, -122.35)

BACKLOGS = [int(b) for b in os.environ.get("ASSIGN_BACKLOGS", "10,100,1000").split(",") if b]
FLEETS = [int(f) for f in os.environ.get("ASSIGN_FLEETS", "20,200,2000,20000").split(",") if f]
BACKLOG_FLEET = int(os.environ.get("ASSIGN_BACKLOG_FLEET", "20"))
FLEET_BACKLOG = int(os.environ.get("ASSIGN_FLEET_BACKLOG", "10"))
BOOKINGS = int(os.environ.get("ASSIGN_BOOKINGS", "200"))
# A booking on 20,000 drones takes a good part of a second: fewer there keeps the run short.
LARGE_FLEET = 10_000
LARGE_FLEET_BOOKINGS = int(os.environ.get("ASSIGN_LARGE_FLEET_BOOKINGS", "40"))
CELL_SECONDS = float(os.environ.get("ASSIGN_CELL_SECONDS", "30"))
SPACING = timedelta(minutes=float(os.environ.get("ASSIGN_WINDOW_SPACING_MINUTES", "30")))
TARGETS = {"backlog": 1.5, "fleet": 3.0}  # issue 17: largest / smallest, at most


def _request(rng: random.Random, now: datetime) -> DroneDeliveryRequest:
    def spot() -> dict[str, float]:
        return Location(47.5 + rng.random() * 0.2, -122.45 + rng.random() * 0.2).to_json()

    return DroneDeliveryRequest.model_validate(
        {
            "deliveryId": f"d-{uuid.uuid4().hex[:10]}",
            "pickup": spot(),
            "dropoff": spot(),
            "packageDetail": {"id": "p1", "size": "Small"},
            "expedited": rng.random() < 0.2,
            "ownerId": "bench",
            # As the system benchmark asks: picked up 5 to 600 minutes from now.
            "pickupTime": now + timedelta(minutes=rng.randint(5, 600)),
            "requestedAt": now,
        }
    )


# --- N in a row ---------------------------------------------------------------------------


async def assign_many(url: str, n: int) -> None:
    drones = await connect_document_store(url, service.DRONES)
    assignments = await connect_document_store(url, service.ASSIGNMENTS)
    try:
        await service.ensure_fleet(drones=drones, size=FLEET, base=BASE)
        rng = random.Random(7)
        wall, cpu = time.perf_counter(), time.process_time()
        server_before = datastores_cpu_s().get("postgres", 0.0)
        for k in range(1, n + 1):
            request = _request(rng, datetime.now(UTC))
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


# --- cost against the work ----------------------------------------------------------------


def backlog_drone(index: int, home: Location, windows: int, now: datetime) -> Drone:
    """A drone booked `windows` deliveries ahead, one starting every SPACING: each a trip of
    about a mile from near its home, flown from where the one before dropped off."""
    rng = random.Random(index)

    def near() -> Location:
        return Location(
            home.latitude + rng.uniform(-0.01, 0.01), home.longitude + rng.uniform(-0.01, 0.01)
        )

    schedule: list[Window] = []
    here = home
    for k in range(windows):
        pickup, dropoff = near(), near()
        to_pickup, carry = miles_between(here, pickup), miles_between(pickup, dropoff)
        departure = now + SPACING * (k + 1)
        pickup_eta = departure + timedelta(hours=to_pickup / CRUISE_MPH)
        schedule.append(
            Window(
                delivery_id=f"backlog-{index}-{k}",
                requested_at=now,
                departure=departure,
                departure_location=here,
                pickup_eta=pickup_eta,
                delivery_eta=pickup_eta + LOADING + timedelta(hours=carry / CRUISE_MPH),
                dropoff=dropoff,
                miles=to_pickup + carry,
            )
        )
        here = dropoff
    empty = Drone(drone_id(index), home, home)
    if not schedule:
        return empty
    # Added last through the model: with_window checks that no two windows overlap.
    return Drone(empty.id, home, home, tuple(schedule[:-1])).with_window(schedule[-1], now)


@dataclass
class Cell:
    fleet: int
    backlog: int
    setup_s: float = 0.0
    first_booking_s: float = 0.0  # reads and parses the whole fleet
    bookings: int = 0
    stopped_by_time: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process (the scheduler's code and SQLite)
    server_cpu_s: float = 0.0  # PostgreSQL's backends for this cell's database

    @property
    def cpu_ms_per_booking(self) -> float:
        return (self.cpu_s + self.server_cpu_s) * 1000 / max(self.bookings, 1)

    def summary(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet,
            "backlog": self.backlog,
            "bookings": self.bookings,
            "stopped_by_time": self.stopped_by_time,
            "setup_s": round(self.setup_s, 2),
            "first_booking_s": round(self.first_booking_s, 3),
            "wall_ms_per_booking": round(self.wall_s * 1000 / max(self.bookings, 1), 3),
            "process_cpu_ms_per_booking": round(self.cpu_s * 1000 / max(self.bookings, 1), 3),
            "server_cpu_ms_per_booking": round(self.server_cpu_s * 1000 / max(self.bookings, 1), 3),
            "cpu_ms_per_booking": round(self.cpu_ms_per_booking, 3),
        }


class CellStores:
    """A fresh place for each cell's drones and assignments: an SQLite file in `tmp`, or a
    database of its own on the PostgreSQL server named, dropped at the end."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.postgres = urlsplit(url).scheme in ("postgresql", "postgres")
        self._url, self._tmp = url, tmp
        self._run = uuid.uuid4().hex[:8]
        self._databases: list[str] = []

    def url_for(self, cell: Cell) -> str:
        name = f"assign_{self._run}_{cell.fleet}_{cell.backlog}"
        if not self.postgres:
            return f"sqlite:///{self._tmp}/{name}.db"
        self._databases.append(name)
        return urlunsplit(urlsplit(self._url)._replace(path=f"/{name}"))

    def _admin_url(self) -> str:
        return urlunsplit(urlsplit(self._url)._replace(path="/postgres"))

    async def backends_cpu_s(self, url: str) -> float:
        """CPU so far of the server processes serving this cell's database."""
        import asyncpg

        admin = await asyncpg.connect(self._admin_url())
        try:
            rows = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", urlsplit(url).path[1:]
            )
        finally:
            await admin.close()
        return sum(_cpu_s(r["pid"]) for r in rows)

    async def drop_all(self) -> None:
        if not self._databases:
            return
        import asyncpg

        admin = await asyncpg.connect(self._admin_url())
        try:
            for name in self._databases:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[tuple[DocumentStore, DocumentStore]]:
    """The drone scheduler's stores as its main.py opens them (SCHEDULE_PAGE_WINDOWS: pages)."""
    drones = PagedDrones(
        await connect_document_store(url, service.DRONES),
        await connect_document_store(url, PAGES),
        page=Settings().schedule_page_windows,
    )
    try:
        assignments = await connect_document_store(url, service.ASSIGNMENTS)
        try:
            yield drones, assignments
        finally:
            await assignments.close()
    finally:
        await drones.close()


async def measure(cell: Cell, stores: CellStores) -> None:
    url = stores.url_for(cell)
    # The scheduler keeps the drones it has read; a fresh cell starts as a fresh process.
    service.forget_fleets()
    rng = random.Random(11)
    async with opened(url) as (drones, assignments):
        started = time.perf_counter()
        now = datetime.now(UTC)
        homes = fleet_homes(cell.fleet, BASE)
        for start in range(0, cell.fleet, 200):  # a few writes at a time, not all at once
            await asyncio.gather(
                *(
                    drones.create(
                        drone_id(i), backlog_drone(i, homes[i], cell.backlog, now).to_json()
                    )
                    for i in range(start, min(start + 200, cell.fleet))
                )
            )
        cell.setup_s = time.perf_counter() - started

        started = time.perf_counter()
        await service.assign(
            drones=drones, assignments=assignments, request=_request(rng, datetime.now(UTC))
        )
        cell.first_booking_s = time.perf_counter() - started

        limit = min(LARGE_FLEET_BOOKINGS, BOOKINGS) if cell.fleet >= LARGE_FLEET else BOOKINGS
        server_before = await stores.backends_cpu_s(url) if stores.postgres else 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        while cell.bookings < limit:
            if time.perf_counter() - wall > CELL_SECONDS:
                cell.stopped_by_time = True
                break
            request = _request(rng, datetime.now(UTC))
            await service.assign(drones=drones, assignments=assignments, request=request)
            cell.bookings += 1
        cell.wall_s, cell.cpu_s = time.perf_counter() - wall, time.process_time() - cpu
        if stores.postgres:  # read while the pool keeps its backends
            cell.server_cpu_s = await stores.backends_cpu_s(url) - server_before
    service.forget_fleets()


def ratio(cells: list[Cell]) -> float:
    return cells[-1].cpu_ms_per_booking / max(cells[0].cpu_ms_per_booking, 1e-9)


def print_table(by_backlog: list[Cell], by_fleet: list[Cell], postgres: bool) -> None:
    server = "  of it PG ms" if postgres else ""
    print(
        f"\n{'drones':>8}{'windows':>9}{'bookings':>10}{'set-up s':>10}{'1st booking s':>15}"
        f"{'wall ms':>10}{'CPU ms':>9}{server}   (per booking)"
    )
    for title, cells in (("backlog", by_backlog), ("fleet", by_fleet)):
        print(f"  by {title}:")
        for c in cells:
            s = c.summary()
            extra = f"{s['server_cpu_ms_per_booking']:>12.2f}" if postgres else ""
            print(
                f"{c.fleet:>8}{c.backlog:>9}{c.bookings:>9}{'*' if c.stopped_by_time else ' '}"
                f"{c.setup_s:>10.1f}{c.first_booking_s:>15.2f}{s['wall_ms_per_booking']:>10.2f}"
                f"{s['cpu_ms_per_booking']:>9.2f}{extra}"
            )
    print(
        f"  CPU ms per booking includes {'the PostgreSQL backends of the cell' if postgres else 'SQLite'}"
        f"; the first booking (reading the fleet) is not in it. {LARGE_FLEET:,}+ drones: at most"
        f" {LARGE_FLEET_BOOKINGS} bookings, others {BOOKINGS}; * = stopped at {CELL_SECONDS:.0f} s"
    )
    print("  ratios (largest / smallest; issue 17's targets):")
    for title, cells, target in (
        ("backlog", by_backlog, TARGETS["backlog"]),
        ("fleet", by_fleet, TARGETS["fleet"]),
    ):
        if len(cells) < 2:
            continue  # a series left out (ASSIGN_BACKLOGS or ASSIGN_FLEETS) has no ratio
        r = ratio(cells)
        print(
            f"    CPU per booking, {cells[0].backlog if title == 'backlog' else cells[0].fleet}"
            f" -> {cells[-1].backlog if title == 'backlog' else cells[-1].fleet}"
            f" {'windows' if title == 'backlog' else 'drones'}: {r:.2f}x"
            f"  (<= {target}x: {'met' if r <= target else 'NOT MET'})"
        )


def plot(by_backlog: list[Cell], by_fleet: list[Cell], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, cells, x, label, target in (
        (
            axes[0],
            by_backlog,
            [c.backlog for c in by_backlog],
            "future windows per drone",
            "backlog",
        ),
        (axes[1], by_fleet, [c.fleet for c in by_fleet], "drones in the fleet", "fleet"),
    ):
        if not cells:
            continue
        ax.plot(x, [c.cpu_ms_per_booking for c in cells], marker="o", label="CPU ms per booking")
        ax.axhline(
            cells[0].cpu_ms_per_booking * TARGETS[target],
            color="tab:red",
            linestyle="--",
            label=f"target: {TARGETS[target]}x the smallest",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("CPU ms per booking (log)")
        ax.legend()
    if by_backlog:
        axes[0].set_title(f"against the backlog ({by_backlog[0].fleet} drones, {title})")
    if by_fleet:
        axes[1].set_title(f"against the fleet ({by_fleet[0].backlog} windows each, {title})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


async def scaling(url: str, tmp: Path) -> dict[str, Any]:
    stores = CellStores(url, tmp)
    by_backlog = [Cell(BACKLOG_FLEET, b) for b in BACKLOGS]
    # The cell both series share is measured once.
    shared = {(c.fleet, c.backlog): c for c in by_backlog}
    by_fleet = [shared.get((f, FLEET_BACKLOG)) or Cell(f, FLEET_BACKLOG) for f in FLEETS]
    try:
        for cell in {id(c): c for c in (*by_backlog, *by_fleet)}.values():
            await measure(cell, stores)
            s = cell.summary()
            print(
                f"  {cell.fleet} drones x {cell.backlog} windows: {cell.bookings} bookings,"
                f" {s['cpu_ms_per_booking']} ms CPU each (set-up {cell.setup_s:.1f} s)",
                flush=True,
            )
    finally:
        await stores.drop_all()
    print_table(by_backlog, by_fleet, stores.postgres)
    return {
        "store": "postgresql" if stores.postgres else "sqlite",
        "by_backlog": [c.summary() for c in by_backlog],
        "by_fleet": [c.summary() for c in by_fleet],
        "ratios": {"backlog": round(ratio(by_backlog), 3), "fleet": round(ratio(by_fleet), 3)},
        "targets": TARGETS,
        "_cells": (by_backlog, by_fleet),
    }


def main() -> None:
    url = (sys.argv[1] if len(sys.argv) > 1 else "") or ""
    with tempfile.TemporaryDirectory(prefix="assignments-") as tmp:
        if len(sys.argv) > 2:
            n = int(sys.argv[2])
            url = url or f"sqlite:///{tmp}/dronescheduler.db"
            print(f"{n} assignments on {FLEET} drones, store {url}")
            asyncio.run(assign_many(url, n))
            return
        print(
            f"assignments: CPU per booking against backlog {BACKLOGS} ({BACKLOG_FLEET} drones)"
            f" and fleet {FLEETS} ({FLEET_BACKLOG} windows each), store {url or 'SQLite'}"
        )
        print(f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (shared machine)")
        result = asyncio.run(scaling(url, Path(tmp)))
    by_backlog, by_fleet = result.pop("_cells")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"assignments-scaling-{result['store']}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot(by_backlog, by_fleet, RESULTS / f"{name}.png", result["store"])
    print(f"  wrote {RESULTS / f'{name}.json'} and {RESULTS / f'{name}.png'}")


if __name__ == "__main__":
    main()
