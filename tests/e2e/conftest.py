"""The running system, started the way `make run` starts it, or one already running.

E2E_BASE_URL set: drive that system (compose, a cluster's ingress) through its entry point;
tests that need to reach inside (internal APIs, killing a process) are skipped there.
Otherwise a fresh stack is started on free ports: E2E_FOOTING=embedded (SQLite files,
default) or servers (the PostgreSQL, Redis and RabbitMQ on this machine).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from launcher.stack import Footing, Stack
from tests import servers
from tests.guide import guide_body

T = TypeVar("T")

GUIDE_REQUEST: dict[str, Any] = guide_body()


@dataclass
class System:
    base_url: str
    stack: Stack | None  # None when driving a system started elsewhere

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0)

    def internal(self, service: str) -> httpx.Client:
        if self.stack is None:
            pytest.skip("internal APIs are not reachable through an external entry point")
        return httpx.Client(base_url=self.stack.url(service), timeout=10.0)

    def need_stack(self) -> Stack:
        if self.stack is None:
            pytest.skip("needs processes this test started (not available with E2E_BASE_URL)")
        return self.stack


def eventually(check: Callable[[], T | None], *, within: float = 30.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"not within {within} s: {what or check} (last: {last!r})")


def deadletters(system: System, *args: str) -> str:
    """What `python -m workflow.deadletters ARGS` prints for this system's queue."""
    stack = system.need_stack()
    env = {**os.environ, "QUEUE_URL": stack.footing.urls["workflow"]["QUEUE_URL"]}
    result = subprocess.run(
        [sys.executable, "-m", "workflow.deadletters", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def dead_lettered(system: System, message_id: str) -> list[dict[str, str]]:
    lines = deadletters(system, "list", "--json", "--limit", "10000").splitlines()
    return [e for e in map(json.loads, lines) if e["messageId"] == message_id]


def _free_base_port(count: int = 6) -> int:
    """A base port with itself and the ports after it free on loopback.

    Below the kernel's ephemeral range (32768-60999 here): a service restarted by a test
    must find its port free, and there an outgoing connection may have taken it meanwhile.
    """
    for _ in range(200):
        base = random.randrange(20_000, 32_000, 10)
        try:
            sockets = []
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports")


def _footing(tmp: Path) -> tuple[Footing, Callable[[], None]]:
    kind = os.environ.get("E2E_FOOTING", "embedded")
    if kind == "embedded":
        return Footing.embedded(tmp / "data"), lambda: None
    if kind != "servers":
        raise ValueError(f"E2E_FOOTING must be embedded or servers, not {kind!r}")
    pg = servers.need_server("postgres")
    redis = servers.need_server("redis")
    amqp = servers.need_server("rabbitmq")
    run = uuid.uuid4().hex[:8]
    # A database per service and run, a queue per run: runs never see each other's data.
    base = pg.rsplit("/", 1)[0]
    footing = Footing.servers(postgres=base, redis=redis, amqp=amqp, queue=f"e2e-{run}")
    footing.urls["package"]["STORE_URL"] = f"{base}/e2e_{run}_package"
    footing.urls["dronescheduler"]["STORE_URL"] = f"{base}/e2e_{run}_dronescheduler"
    # Pages of two windows: drones' schedules are paged here as a long backlog's would be.
    footing.urls["dronescheduler"]["SCHEDULE_PAGE_WINDOWS"] = "2"
    footing.urls["delivery"]["STORE_URL"] = redis
    footing.urls["ingestion"]["STORE_URL"] = redis

    def cleanup() -> None:

        import redis as redis_client

        async def drop() -> None:
            admin = await asyncpg.connect(f"{base}/postgres")
            try:
                for service in ("package", "dronescheduler"):
                    await admin.execute(
                        f'DROP DATABASE IF EXISTS "e2e_{run}_{service}" WITH (FORCE)'
                    )
            finally:
                await admin.close()

        _run_apart(drop())
        redis_client.Redis.from_url(redis).flushdb()
        import aio_pika

        async def drop_queue() -> None:
            connection = await aio_pika.connect(amqp)
            async with connection:
                channel = await connection.channel()
                for name in (f"e2e-{run}", f"e2e-{run}.deadletter"):
                    await channel.queue_delete(name)

        _run_apart(drop_queue())

    return footing, cleanup


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    external = os.environ.get("E2E_BASE_URL")
    if external:
        yield System(external.rstrip("/"), None)
        return
    tmp = tmp_path_factory.mktemp("e2e")
    footing, cleanup = _footing(tmp)
    base = _free_base_port()
    stack = Stack(
        footing,
        gateway_port=base,
        base_port=base,
        log_dir=tmp / "logs",
        # A short lock so that a killed consumer's message comes back within the test.
        extra_env={"workflow": {"QUEUE_LOCK_SECONDS": "3"}},
    )
    stack.up(within=90)
    try:
        yield System(stack.url("gateway"), stack)
    finally:
        stack.down(grace=20)
        print(f"\ne2e logs in {tmp / 'logs'}")
        cleanup()


def _run_apart(work: Coroutine[Any, Any, None]) -> None:
    """Run a teardown coroutine on a loop of its own thread: a fixture torn down while
    another loop runs in this thread (Playwright's sync API keeps one) cannot asyncio.run."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, work).result()
