"""What the chaos stack stands on: its own PostgreSQL cluster and Redis server (so that they
can be restarted without touching anyone else's, and keep what they were told across the
restart), and the machine's RabbitMQ (restarted with rabbitmqctl), with a queue of its own.

PostgreSQL: initdb into a temporary folder (/usr/lib/postgresql/<newest>/bin, or CHAOS_PG_BIN),
trust auth, fsync on, listening on a loopback port chosen by the test. As root (CI), the
cluster runs as the `postgres` user, since PostgreSQL refuses to run as root.
Redis: redis-server in a temporary folder, appendonly yes, appendfsync always.
Each restart is stop (a clean shutdown), a pause, start; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from chassis.queue import OutgoingMessage, connect_message_queue
from tests import servers


def _pg_bin() -> Path:
    """CHAOS_PG_BIN, or the newest of Debian's /usr/lib/postgresql/N/bin (15 on this machine)."""
    if os.environ.get("CHAOS_PG_BIN"):
        return Path(os.environ["CHAOS_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
START_WITHIN = 60.0  # seconds for a server to accept connections


def _wait_port(port: int, within: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not accept connections on port {port} within {within:.0f} s")


def _need(path: Path | str | None, what: str) -> str:
    if path is None or not shutil.which(str(path)):
        servers.skip_unless_ci(f"the chaos test starts its own {what}: {path} is not installed")
    return str(path)


class OwnPostgres:
    """A PostgreSQL cluster of the test's own, on 127.0.0.1:port."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}"
        self._pg_ctl = _need(PG_BIN / "pg_ctl", "PostgreSQL")
        self._root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self._data = self._root / "data"
        # Its log lives with it (the run's log folder may be closed to another user), and
        # is copied beside the services' logs at the end.
        self._log = self._root / "postgres.log"
        self._keep_log = log_dir / "postgres.log"
        # PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(self._root, account.pw_uid, account.pw_gid)
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self._data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",  # initdb's own files only; the server runs with fsync on
        )

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        done = subprocess.run(
            args,
            user=self._user,
            cwd=self._root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(args)} failed: {done.stdout}{done.stderr}")

    def start(self) -> float:
        options = (
            f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=on"
            " -c max_connections=200"
        )
        started = time.monotonic()
        self._run(
            self._pg_ctl, "-D", str(self._data), "-l", str(self._log), "-o", options,
            "-w", "-t", str(int(START_WITHIN)), "start",
        )  # fmt: skip
        _wait_port(self.port, START_WITHIN, "PostgreSQL")
        return time.monotonic() - started

    def create_databases(self, *names: str) -> None:
        """Made before the services start: two replicas starting at once would both create
        their database, and PostgreSQL answers the second CREATE DATABASE with a unique
        violation (not DuplicateDatabase) that chassis/documents/postgres.py does not expect."""
        for name in names:
            self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                      "-U", "postgres", name)  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if (self._data / "postmaster.pid").exists():
            self._run(self._pg_ctl, "-D", str(self._data), "-m", mode, "-w", "-t", "60", "stop")

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            with contextlib.suppress(OSError):
                self._keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self._log, self._keep_log)
            shutil.rmtree(self._root, ignore_errors=True)


class OwnRedis:
    """A redis-server of the test's own on 127.0.0.1:port, keeping every write on disk."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._binary = _need(shutil.which("redis-server") or "redis-server", "Redis")
        self._dir = Path(tempfile.mkdtemp(prefix="chaos-redis-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = log_dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        started = time.monotonic()
        options = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "dir": str(self._dir),
            "appendonly": "yes",
            "appendfsync": "always",
            "save": "",
            "logfile": str(self._log),
            "protected-mode": "no",
        }
        self._process = subprocess.Popen(
            [self._binary, *(arg for k, v in options.items() for arg in (f"--{k}", v))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_port(self.port, START_WITHIN, "Redis")
        return time.monotonic() - started

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


# ------------------------------------------------------------------------- the broker


class Broker:
    """The machine's RabbitMQ: a queue of this run's own, and rabbitmqctl to restart it.

    CHAOS_RABBITMQCTL names another command for rabbitmqctl (e.g. `docker exec <container>
    rabbitmqctl`); a broker in a local container publishing port 5672 is found by itself.
    """

    def __init__(self, amqp: str, queue: str) -> None:
        self.amqp = amqp
        self.queue = queue
        self.queue_url = f"{amqp}?queue={queue}"
        self.ctl = _rabbitmqctl()
        self.stopped = False

    def run(self, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run(
            [*self.ctl, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join([*self.ctl, *args])} failed: {done.stdout}{done.stderr}"
            )
        return done.stdout

    def depth(self) -> int | None:
        """Messages in the queue, ready and unacknowledged (None if the broker cannot say)."""
        try:
            out = self.run(
                "list_queues", "-q", "--no-table-headers", "name", "messages", timeout=60
            )
        except (RuntimeError, subprocess.TimeoutExpired):
            return None
        for line in out.splitlines():
            name, _, count = line.strip().partition("\t")
            if name == self.queue and count.strip().isdigit():
                return int(count)
        return None

    async def restart(self, down_seconds: float) -> str:
        started = time.monotonic()
        self.stopped = True
        await asyncio.to_thread(self.run, "stop_app")
        try:
            await asyncio.sleep(max(0.0, down_seconds - (time.monotonic() - started)))
        finally:
            await asyncio.to_thread(self.run, "start_app")
            self.stopped = False
        down = time.monotonic() - started
        await asyncio.to_thread(self.run, "await_startup")
        ready = await self.ready(within=90)
        return f"stop_app..start_app {down:.1f} s; queue reachable {ready:.1f} s later"

    async def ready(self, within: float) -> float:
        """Seconds until the broker takes a connection and knows the run's queue again."""
        started = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - started < within:
            try:
                connection = await aio_pika.connect(self.amqp, timeout=5)
                async with connection:
                    channel = await connection.channel()
                    await channel.declare_queue(self.queue, passive=True)
                return time.monotonic() - started
            except Exception as e:
                last = e
                await asyncio.sleep(0.5)
        raise TimeoutError(f"broker not ready within {within:.0f} s (last: {last!r})")

    async def send_poison(self, message_id: str) -> str:
        """An undecodable body, straight onto the queue (no client could send it)."""
        queue = await connect_message_queue(self.queue_url)
        try:
            await queue.send(OutgoingMessage(message_id, b"{not json", {"operation": "delivery"}))
        finally:
            await queue.close()
        return f"sent {message_id}"

    def dead_letters(self) -> list[dict[str, Any]]:
        """What the operators' CLI lists (python -m workflow.deadletters list --json)."""
        env = {**os.environ, "QUEUE_URL": self.queue_url}
        done = subprocess.run(
            [sys.executable, "-m", "workflow.deadletters", "list", "--json", "--limit", "10000"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    async def delete_queues(self) -> None:
        connection = await aio_pika.connect(self.amqp, timeout=10)
        async with connection:
            channel = await connection.channel()
            for name in (self.queue, f"{self.queue}.deadletter"):
                await channel.queue_delete(name)
            await channel.exchange_delete(f"{self.queue}.dlx")


def _rabbitmqctl() -> list[str]:
    """How to run rabbitmqctl against the broker the tests use."""
    configured = os.environ.get("CHAOS_RABBITMQCTL", "")
    if configured:
        return shlex.split(configured)
    if shutil.which("rabbitmqctl"):
        return ["rabbitmqctl"]
    docker = shutil.which("docker")
    if docker:
        found = subprocess.run(
            [docker, "ps", "-q", "--filter", "publish=5672"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.split()
        if len(found) == 1:
            return [docker, "exec", found[0], "rabbitmqctl"]
    reason = (
        "cannot restart the broker: no rabbitmqctl on PATH and no single local container"
        " publishing 5672 (set CHAOS_RABBITMQCTL)"
    )
    if "rabbitmq" in servers._required():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
