"""The faults, injected while the load runs, in two tracks that run side by side (the
processes, and what they stand on); each step starts once a share of the creates has been
acknowledged, so the faults land during the load whatever its rate.

Services are started from the main thread, never from a worker thread (asyncio.to_thread):
the launcher asks for SIGTERM when the *thread* that started a child exits
(PR_SET_PDEATHSIG), so a child started from a pool thread dies with that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from launcher.stack import Stack
from tests.chaos.footing import Broker, OwnPostgres, OwnRedis
from tests.chaos.load import Load

Step = tuple[float, str, Callable[[], Awaitable[str]]]  # share of creates acked, name, action


@dataclass
class Event:
    name: str
    start: float  # seconds since the load started
    acked_at_start: int
    end: float = 0.0
    acked_at_end: int = 0
    detail: str = ""


@dataclass(frozen=True)
class Durations:
    delivery_down: float  # longer than workflow's wait for a not-yet-known delivery
    frozen: float  # longer than the drone scheduler's booking claim timeout
    broker_down: float = 5.0
    datastore_down: float = 3.0


async def kill_and_restart(stack: Stack, name: str, down: float = 0.0) -> str:
    started = time.monotonic()
    process = stack.processes[name]
    process.send_signal(signal.SIGKILL)
    code = await asyncio.to_thread(process.wait, 30)
    await asyncio.sleep(max(0.0, down - (time.monotonic() - started)))
    restarted = time.monotonic() - started
    stack.start(name)  # the main thread: see above
    took = await asyncio.to_thread(stack.wait_ready, name, 90)
    return (
        f"pid {process.pid} exited {code}; restarted after {restarted:.1f} s, ready"
        f" {took:.1f} s later"
    )


async def _busy(url: str, at_least: int, within: float) -> int:
    """Wait (bounded) for a moment when the service serves `at_least` requests at once, so
    that a freeze catches bookings under way (claimed, waiting for their turn to reserve):
    the requests in flight then (the most seen, if that moment did not come)."""
    deadline = time.monotonic() + within
    most = 0
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as client:
        while time.monotonic() < deadline and most < at_least:
            with contextlib.suppress(httpx.HTTPError):
                text = (await client.get("/metrics")).text
                for line in text.splitlines():
                    if line.startswith("http_requests_in_flight "):
                        most = max(most, int(float(line.split()[1])))
            await asyncio.sleep(0.01)
    return most


async def freeze(stack: Stack, name: str, seconds: float) -> str:
    """SIGSTOP, then SIGCONT after `seconds`: a replica alive but not running (a long GC
    pause, a VM stall), holding whatever booking claims it had taken; stopped while it
    serves several requests (if that moment comes within 20 s)."""
    busy = await _busy(stack.url(name), at_least=3, within=20.0)
    process = stack.processes[name]
    process.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        process.send_signal(signal.SIGCONT)
    return f"pid {process.pid} stopped with {busy} requests in flight, {seconds:.0f} s; continued"


class Server(Protocol):
    def stop(self) -> None: ...
    def start(self) -> float: ...


async def restart(server: Server, down: float) -> str:
    """Stop (cleanly), wait, start again: what it was told before must still be there."""
    started = time.monotonic()
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(max(0.0, down - (time.monotonic() - started)))
    took = await asyncio.to_thread(server.start)
    return f"stopped, down {time.monotonic() - started:.1f} s, started in {took:.1f} s"


def tracks(
    stack: Stack,
    pg: OwnPostgres,
    redis: OwnRedis,
    broker: Broker,
    poison: list[str],
    durations: Durations,
) -> list[list[Step]]:
    """Every service SIGKILLed at least once; the datastores and the broker restarted; one
    drone scheduler replica frozen past its claim timeout; the poison messages."""
    doses = iter(poison)
    workflows = stack.replica_names("workflow")
    schedulers = stack.replica_names("dronescheduler")
    processes: list[Step] = [
        (0.06, "gateway SIGKILL, restart", lambda: kill_and_restart(stack, "gateway")),
        (0.14, "ingestion SIGKILL, restart", lambda: kill_and_restart(stack, "ingestion")),
        (0.22, f"{workflows[0]} SIGKILL, restart", lambda: kill_and_restart(stack, workflows[0])),
        (0.30, "package SIGKILL, restart", lambda: kill_and_restart(stack, "package")),
        (
            0.40,
            f"delivery SIGKILL, down {durations.delivery_down:.0f} s",
            lambda: kill_and_restart(stack, "delivery", durations.delivery_down),
        ),
        (
            0.62,
            f"{schedulers[-1]} SIGKILL, restart",
            lambda: kill_and_restart(stack, schedulers[-1]),
        ),
        (0.70, f"{workflows[-1]} SIGKILL, restart", lambda: kill_and_restart(stack, workflows[-1])),
        (0.78, "poison message", lambda: broker.send_poison(next(doses))),
    ]
    footing: list[Step] = [
        (0.04, "poison message", lambda: broker.send_poison(next(doses))),
        (0.10, "PostgreSQL restart", lambda: restart(pg, durations.datastore_down)),
        (0.18, "Redis restart", lambda: restart(redis, durations.datastore_down)),
        (0.24, "poison message", lambda: broker.send_poison(next(doses))),
        (0.28, "broker restart", lambda: broker.restart(durations.broker_down)),
        (
            0.40,
            f"{schedulers[0]} SIGSTOP {durations.frozen:.0f} s, SIGCONT",
            lambda: freeze(stack, schedulers[0], durations.frozen),
        ),
    ]
    return [processes, footing]


async def _track(
    load: Load, steps: list[Step], events: list[Event], say: Callable[[str], None]
) -> None:
    for share, name, action in steps:
        while load.creates_acked < share * load.total and load.done is None:
            load.progressed.clear()
            await load.progressed.wait()
        event = Event(name, load.now(), load.creates_acked)
        events.append(event)
        say(f"chaos: {name} (creates acknowledged {event.acked_at_start})")
        event.detail = await action()
        event.end, event.acked_at_end = load.now(), load.creates_acked
        say(f"chaos: {name}: {event.detail}")


async def inject(
    load: Load, plan: list[list[Step]], events: list[Event], say: Callable[[str], None]
) -> None:
    """Every track to its end; the first failure is raised once all have ended."""
    results = await asyncio.gather(
        *(_track(load, steps, events, say) for steps in plan), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
