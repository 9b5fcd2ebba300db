"""Chaos: what production sees, all at once, and whether every acknowledged operation holds.

The stack runs as production does: authentication on in every service (tokens from a
loopback identity provider, tests/identity.py), two replicas each of workflow and of the
drone scheduler (workflow i calls scheduler i % 2, so two schedulers book on the same
stores at once), PostgreSQL, Redis and RabbitMQ. The load (load.py) lives deliveries' lives
through the entry point with the owner's writer token: creates; reschedules of
pickupLocation, dropOffLocation, pickupTime or deadline, and two quick ones changing
different fields; cancels, some sent at once after the 202; and a few requests that cannot
be planned (pickupTime in year 9999).

Meanwhile (faults.py): every service is SIGKILLed and restarted at least once (gateway,
ingestion, both workflows, package, a drone scheduler; delivery stays down 30 s, longer
than workflow once waited for a delivery it did not know yet), the test's own PostgreSQL and Redis are
restarted, the machine's RabbitMQ is restarted (rabbitmqctl stop_app / start_app), package
answers 30% of its calls with an injected 503, one drone scheduler replica is frozen
(SIGSTOP) past its booking claim timeout and then resumed, and poison messages (undecodable
bodies) are put straight on the queue.

Afterwards (judge.py) it waits, bounded, until every delivery shows what its last
acknowledged operation says (or nothing changes for STALL seconds), then prints a table per
operation kind (acknowledged, applied, lost, misapplied, double-booked, dead-lettered) and
the system checks (none lost, none duplicated, replays the same id, no overlapping
windows), and fails on any of them but the injected poison (which must be dead-lettered, or
end Failed with a reason).

Its footing (footing.py): its own PostgreSQL cluster and redis-server on free loopback
ports in temporary folders (writes kept on disk, so a restart loses nothing), the machine's
RabbitMQ (TEST_AMQP_URL) with a queue of its own; all removed afterwards, whatever happens.

    uv run pytest tests/chaos -q -s        (make test-chaos)

A bare `pytest` skips it (it takes minutes and restarts the broker): name tests/chaos, or
set CHAOS=1. Knobs: CHAOS_REQUESTS (deliveries, 800), CHAOS_RATE (new deliveries a second,
6), CHAOS_BURST (deliveries started together, 20), CHAOS_CONNECTIONS (the client's, 32),
CHAOS_DRAIN_SECONDS (longest wait for the final state, 240), CHAOS_STALL_SECONDS (stop
waiting when nothing changed for this long, 60), CHAOS_UNPLANNABLE (5), CHAOS_LOG_DIR (where
the services' logs go, a folder per run; default pytest's tmp_path), CHAOS_RABBITMQCTL,
CHAOS_PG_BIN (see footing.py). The services' own settings it lowers, so that the faults
outlast them within minutes: the drone scheduler's claim timeout (15 s; the freeze lasts 45 s), and how long
workflow holds a message whose downstream is out (10 s, so that a frozen scheduler's
messages reach the other replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chassis.documents import connect_document_store
from dronescheduler.pages import PAGES
from launcher.stack import SERVICES, Footing, Stack
from tests import servers
from tests.chaos.faults import Durations, Event, Step, inject, tracks
from tests.chaos.footing import Broker, OwnPostgres, OwnRedis
from tests.chaos.judge import COLUMNS, Observed, Reader, Report, judge, months_of, settled
from tests.chaos.load import Kind, Load, run_load
from tests.e2e.conftest import _free_base_port, eventually
from tests.identity import ADMIN, WRITER, IdentityProvider

REQUESTS = int(os.environ.get("CHAOS_REQUESTS", "800"))
RATE = float(os.environ.get("CHAOS_RATE", "6"))
BURST = int(os.environ.get("CHAOS_BURST", "20"))
CONNECTIONS = int(os.environ.get("CHAOS_CONNECTIONS", "32"))
DRAIN_SECONDS = float(os.environ.get("CHAOS_DRAIN_SECONDS", "240"))
STALL_SECONDS = float(os.environ.get("CHAOS_STALL_SECONDS", "60"))
UNPLANNABLE = int(os.environ.get("CHAOS_UNPLANNABLE", "5"))

POISON = 3
PROGRESS_EVERY = 15.0  # seconds between progress lines
# Delivery's outage: longer than workflow ever waited for a delivery it did not know yet
# (it waits for none now: every message is the whole request, a cancel final on its own).
DELIVERY_DOWN = 30.0
# The drone scheduler's booking claim timeout, and the freeze of one replica beyond it.
CLAIM_STALE_AFTER = 15.0
# Frozen long enough for its stuck messages to go back to the queue (workflow's calls time
# out, the hold ends) and reach the other replica while its claims are stale.
DURATIONS = Durations(delivery_down=DELIVERY_DOWN, frozen=CLAIM_STALE_AFTER + 30)


def _say(load: Load | None, text: str) -> None:
    stamp = f"[{load.now():7.1f} s] " if load else ""
    print(f"{stamp}{text}", flush=True)


def _settings(idp: IdentityProvider) -> dict[str, dict[str, str]]:
    """Every service with authentication on; the faults' own settings on top."""
    env = {service: idp.settings() for service in SERVICES}
    env["package"].update(FAULT_ERROR_RATE="0.3", FAULT_ROUTES="^/api/packages")
    env["workflow"].update(
        QUEUE_LOCK_SECONDS="5",
        # Held messages go back to the queue soon, so another replica takes them over.
        QUEUE_HOLD_SECONDS="10",
        WORKFLOW_CONCURRENCY="16",
    )
    # Pages of four windows: most bookings and cancels write a page too (pages.py).
    env["dronescheduler"].update(
        CLAIM_STALE_AFTER_SECONDS=str(CLAIM_STALE_AFTER), SCHEDULE_PAGE_WINDOWS="4"
    )
    return env


async def _progress(load: Load) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        acked = ", ".join(f"{k}: {sum(op.acked for op in load.ops(k))}" for k in Kind)
        attempts = ", ".join(f"{k}: {v}" for k, v in sorted(load.outcomes.items()))
        _say(load, f"acknowledged {acked}; attempts {attempts}")


async def _drive(
    load: Load, stack: Stack, writer: dict[str, str], plan: list[list[Step]], events: list[Event]
) -> None:
    progress = asyncio.create_task(_progress(load))
    try:
        # Both to the end: a fault that fails still lets the load finish, and is raised.
        results = await asyncio.gather(
            run_load(stack.url("gateway"), writer, load, CONNECTIONS),
            inject(load, plan, events, lambda text: _say(load, text)),
            return_exceptions=True,
        )
    finally:
        progress.cancel()
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _await_final_state(load: Load, reader: Reader, broker: Broker, seen: Observed) -> None:
    """Until every delivery shows what its last acknowledged operation says and the queue is
    empty; or nothing changed for STALL_SECONDS; or DRAIN_SECONDS passed."""
    started = changed = said = time.monotonic()
    pending = {d.delivery_id for d in load.deliveries if d.delivery_id and not d.unsettled}
    while time.monotonic() - started < DRAIN_SECONDS:
        seen.fleet, seen.fleet_at = await reader.fleet(), datetime.now(UTC)
        await reader.deliveries(pending, seen.deliveries)
        done = pending & set(settled(load, seen))
        if done:
            pending -= done
            changed = time.monotonic()
        if not pending and await asyncio.to_thread(broker.depth) == 0:
            break
        if time.monotonic() - changed > STALL_SECONDS:
            _say(load, f"nothing changed for {STALL_SECONDS:.0f} s: judging as it is")
            break
        if time.monotonic() - said > PROGRESS_EVERY:
            said = time.monotonic()
            _say(load, f"waiting for the final state: {len(pending)} deliveries not there yet")
        await asyncio.sleep(1.0)
    seen.drain_seconds = time.monotonic() - started


async def _observe(
    load: Load, reader: Reader, broker: Broker, seen: Observed, poison: list[str]
) -> None:
    """Everything again, at once: the state that is judged."""
    seen.queue_left = await asyncio.to_thread(broker.depth)
    seen.fleet, seen.fleet_at = await reader.fleet(), datetime.now(UTC)
    await reader.deliveries(
        (d.delivery_id for d in load.deliveries if d.delivery_id), seen.deliveries
    )
    seen.summary = await reader.summary(load.owner, months_of(seen))

    def poison_listed() -> list[dict[str, object]] | None:
        listed = broker.dead_letters()
        return listed if set(poison) <= {str(d["messageId"]) for d in listed} else None

    try:
        seen.dead_letters = await asyncio.to_thread(
            eventually, poison_listed, within=60, what="the poison messages dead-lettered"
        )
    except AssertionError:
        seen.dead_letters = await asyncio.to_thread(broker.dead_letters)  # judged as it is


def _print_report(
    load: Load, seen: Observed, events: list[Event], r: Report, log_dir: Path, took: float
) -> None:
    print("\n=== chaos: what was done ===")
    print(f"{'at (s)':>8} {'until':>8} {'creates':>11}  event")
    for e in sorted(events, key=lambda e: e.start):
        late = "" if load.done is None or e.start < load.done else "  (AFTER the load)"
        print(
            f"{e.start:8.1f} {e.end:8.1f} {e.acked_at_start:5d}-{e.acked_at_end:<5d}  "
            f"{e.name}: {e.detail}{late}"
        )
    done = f"{load.done:.1f} s" if load.done is not None else "-"
    print(f"load finished at {done}; final state waited for {seen.drain_seconds:.1f} s;")
    print(f"queue left: {seen.queue_left}; run {load.tag}, owner {load.owner}")
    print("\n=== chaos: per operation ===")
    print(f"{'':<18}" + "".join(f"{c:>15}" for c in COLUMNS))
    failing = {f.split(":")[0] for f in r.failures}
    for name, row in r.table.items():
        mark = "  <-- FAILED" if name in failing else ""
        print(f"{name:<18}" + "".join(f"{row[c]:>15}" for c in COLUMNS) + mark)
    print("\n=== chaos: system checks ===")
    width = max(len(c[0]) for c in r.checks)
    value_width = min(max(len(c[1]) for c in r.checks), 70)
    for what, value, expected in r.checks:
        print(f"{what:<{width}}  {value:<{value_width}}  {expected}")
    print(f"duration: {took:.0f} s; logs in {log_dir}")
    for line in r.evidence:
        print(f"evidence: {line}")


def _log_evidence(log_dir: Path, needles: list[str], limit: int = 8) -> list[str]:
    """Log lines that name the given ids: why they were lost, dead-lettered, doubled."""
    found: list[str] = []
    for log in sorted(log_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if any(n in line for n in needles):
                found.append(f"{log.stem}: {line[:400]}")
                if len(found) >= limit * len(needles):
                    return found
    return found


def test_chaos(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # Minutes long, and it restarts the machine's broker: only when asked for by name.
    named = any("chaos" in str(a) for a in request.config.invocation_params.args)
    if not named and os.environ.get("CHAOS") != "1":
        pytest.skip("the chaos test runs when named (pytest tests/chaos, make test-chaos)")
    began = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    log_dir = Path(os.environ.get("CHAOS_LOG_DIR", "") or tmp_path / "logs") / tag
    base = _free_base_port(count=20)  # the services, their second replicas, our servers
    broker = Broker(servers.need_server("rabbitmq"), f"chaos-{tag}")
    broker.run("await_startup")  # the broker is up before we start (and can be restarted)
    load = Load(REQUESTS, RATE, tag, f"chaos-{tag}", UNPLANNABLE, BURST)
    poison = [f"poison-{tag}-{i}" for i in range(1, POISON + 1)]
    events: list[Event] = []
    seen = Observed()
    with contextlib.ExitStack() as teardown:  # undone last-first, whatever happens
        idp = teardown.enter_context(IdentityProvider())
        pg = OwnPostgres(base + 16, log_dir)
        teardown.callback(pg.close)
        pg.start()
        pg.create_databases("package", "dronescheduler")
        redis = OwnRedis(base + 17, log_dir)
        teardown.callback(redis.close)
        redis.start()
        teardown.callback(lambda: asyncio.run(broker.delete_queues()))
        footing = Footing.servers(
            postgres=pg.url, redis=redis.url, amqp=broker.amqp, queue=broker.queue
        )
        stack = Stack(
            footing,
            gateway_port=base,
            base_port=base,
            log_dir=log_dir,
            extra_env=_settings(idp),
            replicas={"workflow": 2, "dronescheduler": 2},
        )
        teardown.callback(stack.down, 20)
        teardown.callback(lambda: broker.stopped and broker.run("start_app"))
        took = stack.up(within=120)
        _say(None, f"stack up on {stack.url('gateway')} ({max(took.values()):.1f} s); run {tag}")
        writer = idp.bearer(load.owner, scopes=WRITER)
        plan = tracks(stack, pg, redis, broker, poison, DURATIONS)
        load.started = time.monotonic()
        asyncio.run(_drive(load, stack, writer, plan, events))

        async def afterwards() -> None:
            admin = idp.bearer("chaos-operator", roles=[ADMIN])
            async with Reader(stack.url("delivery"), stack.url("dronescheduler"), admin) as reader:
                await _await_final_state(load, reader, broker, seen)
                await _observe(load, reader, broker, seen, poison)
            # The drone documents' pages, read as the scheduler's store reads them.
            pages = await connect_document_store(f"{pg.url}/dronescheduler", PAGES)
            try:
                seen.pages = len(await pages.versions())
            finally:
                await pages.close()

        asyncio.run(afterwards())

    report = judge(load, seen, poison)
    if report.suspects:
        report.evidence += _log_evidence(log_dir, report.suspects)
    _print_report(load, seen, events, report, log_dir, time.monotonic() - began)
    late = [e.name for e in events if load.done is not None and e.start >= load.done]
    assert not late, f"chaos after the load had finished: {late} (lower CHAOS_RATE)"
    if report.failures:
        pytest.fail("chaos checks failed:\n" + "\n".join(report.failures), pytrace=False)
