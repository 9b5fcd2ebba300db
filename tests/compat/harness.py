"""Two releases of the services on one queue and one set of stores.

The previous release is checked out (tests/compat/previous-release names it) into
build/compat/<commit> with `git worktree add --detach`, and run with this venv: a service
of that release is `python -m <service>` with PYTHONPATH at the checkout's services/, which
comes before the editable install of the current code. Both releases are then the same
programs `make run` starts (launcher/stack.py), differing only in where their code is.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from launcher.stack import Footing, Stack
from tests import servers
from tests.e2e.conftest import _free_base_port, eventually
from tests.e2e.original_clients import SCHEDULED, hours_from_now

REPO = Path(__file__).resolve().parents[2]
RELEASE_FILE = Path(__file__).with_name("previous-release")
# What runs in either release here: the gateway is stateless and is not part of the contract.
SERVICES = ("package", "dronescheduler", "delivery", "ingestion", "workflow")
CURRENT = "current"


def previous_release() -> str:
    for line in RELEASE_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    raise ValueError(f"{RELEASE_FILE} names no commit")


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


def previous_services() -> Path:
    """The previous release's services/, checked out once (kept in build/ between runs).
    Skips (fails in CI) when there is no git or the commit is not in this clone."""
    release = previous_release()
    if shutil.which("git") is None:
        servers.skip_unless_ci("git is not installed: cannot check out the previous release")
    try:
        commit = _git("rev-parse", "--verify", f"{release}^{{commit}}")
    except subprocess.CalledProcessError:
        servers.skip_unless_ci(f"the previous release {release} is not in this clone (fetch it)")
    checkout = REPO / "build" / "compat" / commit
    if checkout.is_dir():
        try:
            if _git("rev-parse", "HEAD", cwd=checkout) == commit:
                return checkout / "services"
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(checkout)
    _git("worktree", "prune")
    _git("worktree", "add", "--detach", str(checkout), commit)
    return checkout / "services"


def dependencies_differ() -> list[str]:
    """Files that pin dependencies and changed since the previous release: the old code then
    runs on newer libraries than it shipped with (said in the test's output)."""
    changed = _git("diff", "--name-only", previous_release(), "HEAD", "--", "uv.lock")
    return changed.splitlines()


@contextmanager
def footing(kind: str, tmp: Path) -> Iterator[Footing]:
    """embedded: SQLite stores and queue. servers: this machine's PostgreSQL (a database
    per service, named for this run) and RabbitMQ (a queue named for this run)."""
    if kind == "embedded":
        yield Footing.embedded(tmp / "data")
        return
    pg = servers.need_server("postgres").rsplit("/", 1)[0]
    amqp = servers.need_server("rabbitmq")
    run = uuid.uuid4().hex[:8]
    databases = {s: f"compat_{run}_{s}" for s in SERVICES if s != "workflow"}
    queue = f"compat-{run}"
    urls: dict[str, dict[str, str]] = {
        s: {"STORE_URL": f"{pg}/{db}"} for s, db in databases.items()
    }
    urls["workflow"] = {}
    for s in ("ingestion", "workflow"):
        urls[s]["QUEUE_URL"] = f"{amqp}?queue={queue}"
    try:
        yield Footing("servers", urls)
    finally:
        asyncio.run(_drop(pg, list(databases.values()), amqp, [queue, f"{queue}.deadletter"]))


async def _drop(pg: str, databases: list[str], amqp: str, queues: list[str]) -> None:
    import aio_pika
    import asyncpg

    admin = await asyncpg.connect(f"{pg}/postgres")
    try:
        for db in databases:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await admin.close()
    connection = await aio_pika.connect(amqp)
    async with connection:
        channel = await connection.channel()
        for name in queues:
            await channel.queue_delete(name)


class Releases:
    """The five services, each running one release or the other, restarted to switch."""

    def __init__(self, footing: Footing, logs: Path, previous: Path | None = None) -> None:
        base = _free_base_port()
        self.stack = Stack(
            footing,
            gateway_port=base,
            base_port=base,
            log_dir=logs,
            # A short lock: a message a stopped workflow held comes back within the test.
            extra_env={"workflow": {"QUEUE_LOCK_SECONDS": "3"}},
        )
        self._code = {CURRENT: ""} | ({} if previous is None else {"previous": str(previous)})
        self.running: dict[str, str] = {}

    def run(self, release: str, *services: str) -> None:
        """Restart `services` (all five by default) on `release`, and wait until ready."""
        names = services or SERVICES
        self.stop(*names)
        for name in names:
            self.stack.extra_env.setdefault(name, {})["PYTHONPATH"] = self._code[release]
            self.stack.start(name)
            self.running[name] = release
        for name in names:
            self.stack.wait_ready(name, within=60)

    def stop(self, *services: str) -> None:
        for name in services:  # all told at once: they drain side by side
            self.stack.signal(name, signal.SIGTERM)
        for name in services:
            self.stack.stop(name, grace=20)
            self.running.pop(name, None)

    def down(self) -> None:
        self.stack.down(grace=20)

    def client(self, service: str) -> httpx.Client:
        return httpx.Client(base_url=self.stack.url(service), timeout=10.0)

    def dead_letters(self) -> list[dict[str, Any]]:
        """What the queue dead-lettered, through the current code's command."""
        queue_url = self.stack.footing.urls["workflow"]["QUEUE_URL"]
        env = {**os.environ, "QUEUE_URL": queue_url, "PYTHONPATH": ""}
        out = subprocess.run(
            [sys.executable, "-m", "workflow.deadletters", "list", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def until(self, check: Callable[[], Any], what: str, within: float = 45.0) -> Any:
        """`check` until truthy; on time-out the failure says which release ran what and
        what was dead-lettered (a message a release could not read ends there)."""
        try:
            return eventually(check, within=within, what=what)
        except AssertionError as e:
            raise AssertionError(
                f"{e}\n  running: {self.running}\n  dead letters: {self.dead_letters()}"
                f"\n  logs: {self.stack.log_dir}"
            ) from None


def _request(n: int, run: str, **changes: Any) -> dict[str, Any]:
    return {
        "ownerId": f"compat-owner-{run}",
        "pickupLocation": f"47.6{n},-122.33",
        "dropOffLocation": f"47.6{n},-122.3{n}",
        "pickupTime": hours_from_now(1).isoformat().replace("+00:00", "Z"),
        "deadline": "",
        "expedited": n % 2 == 0,
        "confirmationRequired": "None",
        "packageInfo": {"packageId": f"pkg-{n}", "size": "Small", "tag": f"t{n}", "weight": n},
    } | changes


class Client:
    """A delivery's operations as a client sends them, and what the services then show."""

    def __init__(self, releases: Releases) -> None:
        self.releases = releases
        self.run = uuid.uuid4().hex[:8]

    def create(self, n: int, **changes: Any) -> str:
        with self.releases.client("ingestion") as c:
            r = c.post("/api/deliveryrequests", json=_request(n, self.run, **changes))
        assert r.status_code == 202, r.text
        delivery_id: str = r.json()["deliveryId"]
        return delivery_id

    def reschedule(self, delivery_id: str, dropoff: str) -> None:
        with self.releases.client("ingestion") as c:
            r = c.patch(f"/api/deliveryrequests/{delivery_id}", json={"dropOffLocation": dropoff})
        assert r.status_code == 200, r.text

    def cancel(self, delivery_id: str) -> None:
        with self.releases.client("ingestion") as c:
            r = c.delete(f"/api/deliveryrequests/{delivery_id}")
        assert r.status_code == 204, r.text

    def _get(self, service: str, path: str) -> dict[str, Any] | None:
        with self.releases.client(service) as c:
            try:
                r = c.get(path)
            except httpx.TransportError:
                return None
        return r.json() if r.status_code == 200 else None

    def scheduled(self, delivery_id: str, n: int, dropoff: str) -> dict[str, Any]:
        """The delivery recorded with its drone, its drop-off `dropoff`, its package's
        weight n, and the drone's claim naming the same drone."""

        def done() -> dict[str, Any] | None:
            delivery = self._get("delivery", f"/api/deliveries/{delivery_id}")
            status = self._get("delivery", f"/api/deliveries/{delivery_id}/status")
            claim = self._get("dronescheduler", f"/api/dronedeliveries/{delivery_id}")
            lat, lon = (float(x) for x in dropoff.split(","))
            if not (delivery and status and claim) or status["stage"] not in SCHEDULED:
                return None
            here = delivery["dropoff"]
            if (here["latitude"], here["longitude"]) != (lat, lon):
                return None
            return delivery if claim["droneId"] == delivery["droneId"] else None

        delivery: dict[str, Any] = self.releases.until(
            done, f"{delivery_id} scheduled to {dropoff}"
        )
        owner = delivery["owner"]["userId"]
        package = self._get("package", f"/api/packages/pkg-{n}?ownerId={owner}")
        assert package is not None and package["weight"] == n, package
        return delivery

    def stage(self, delivery_id: str) -> str | None:
        status = self._get("delivery", f"/api/deliveries/{delivery_id}/status")
        return None if status is None else str(status["stage"])

    def cancelled(self, delivery_id: str, *, booked: bool = True) -> None:
        def done() -> bool:
            status = self._get("delivery", f"/api/deliveries/{delivery_id}/status")
            claim = self._get("dronescheduler", f"/api/dronedeliveries/{delivery_id}")
            return bool(status and status["stage"] == "Cancelled" and (claim or not booked))

        self.releases.until(done, f"{delivery_id} cancelled")
        if booked:
            claim = self._get("dronescheduler", f"/api/dronedeliveries/{delivery_id}")
            assert claim is not None and claim["status"] == "Cancelled", claim
