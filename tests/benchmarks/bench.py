"""The system's figures, measured in one run: `make bench` (BENCH_REQUESTS=N to change N).

For each footing (embedded SQLite files; the PostgreSQL, Redis and RabbitMQ on this machine,
skipped with the reason when one is absent) it starts the whole system on free ports and
measures readiness, resident memory (idle and under load), the baseline (a trivial request
proxied by the entry point to a service, see BASELINE), the accept rate of delivery requests
with workflow paused (SIGSTOP, so that the queue fills and accepting has the cores to itself;
SIGCONT after, and the backlog's drain rate is measured too), end-to-end completions per
second (202 to delivery readable at the delivery service) while accepting, both as ratios to
the baseline, latency percentiles, p99 accept latency at half the maximum rate, and
throughput against workflow concurrency. The entry point's own trivial endpoint (GET
/healthz, answered without a service) is still measured, to show what the proxying costs.

The client runs on the same cores as the system, so ratios measured in the same run are the
figures that travel; absolute rates depend on the machine. It reports and exits 0; non-zero
only when the system could not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from launcher.stack import SERVICES, Footing, Stack
from tests import servers
from tests.e2e.conftest import _free_base_port

RESULTS = Path(os.environ.get("BENCH_RESULTS", "results/bench"))
N_REQUESTS = int(os.environ.get("BENCH_REQUESTS", "5000"))
N_SWEEP = int(os.environ.get("BENCH_SWEEP_REQUESTS", "1000"))
N_PAUSED = int(os.environ.get("BENCH_PAUSED_REQUESTS", str(N_REQUESTS)))
WORKERS = int(os.environ.get("BENCH_WORKERS", "32"))
CONCURRENCIES = [int(c) for c in os.environ.get("BENCH_CONCURRENCIES", "4,16,64").split(",") if c]
FOOTINGS = os.environ.get("BENCH_FOOTINGS", "embedded,servers").split(",")
# Not the e2e tests' database 15: the benchmark empties its database when it is done.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DRAIN_STALL_SECONDS = 45.0  # give up waiting for completions after this long without one
# End-to-end latency is followed for every E2E_SAMPLE-th request, polled at most POLL_BATCH
# reads every POLL_INTERVAL seconds: polling every request as fast as possible made the
# delivery service the busiest process, measuring the poller rather than the system.
E2E_SAMPLE = int(os.environ.get("BENCH_E2E_SAMPLE", "5"))
POLL_BATCH = int(os.environ.get("BENCH_POLL_BATCH", "10"))
POLL_INTERVAL = 0.1
# A py-spy executable: each service is sampled during the paused accepts and the main run
# (raw stacks in RESULTS/profile-<footing>-<run>-<service>.txt, for flamegraph tools).
PYSPY = os.environ.get("BENCH_PYSPY", "")

TARGETS = {
    "accept_ratio": (">=", 0.6, "accept rate, workflow paused / baseline"),
    "e2e_ratio": (">=", 0.3, "end-to-end, sustained / baseline"),
    "e2e_per_s": (">=", 370.0, "end-to-end deliveries/s"),
    "p99_accept_half_ms": ("<=", 50.0, "p99 accept latency at 50% e2e rate (ms)"),
    "cpu_ms_per_delivery": ("<=", 5.0, "all CPU per delivery (ms)"),
    "readiness_max_s": ("<=", 3.0, "readiness alone, slowest service (s)"),
    "idle_rss_max_mb": ("<=", 100.0, "idle RSS, largest service (MB)"),
}


def delivery_request() -> dict[str, Any]:
    def spot() -> str:
        return f"{47.5 + random.random() * 0.2:.5f},{-122.45 + random.random() * 0.2:.5f}"

    return {
        "confirmationRequired": "None",
        "deadline": "",
        "dropOffLocation": spot(),
        "expedited": random.random() < 0.2,
        "ownerId": f"bench-{random.randrange(100)}",
        "packageInfo": {
            "packageId": f"pkg-{uuid.uuid4().hex[:12]}",
            "size": random.choice(("Small", "Medium", "Large")),
            "tag": "bench",
            "weight": round(random.uniform(0.5, 20), 2),
        },
        "pickupLocation": spot(),
        "pickupTime": (datetime.now(UTC) + timedelta(minutes=random.randint(5, 600))).isoformat(),
    }


# --- memory ------------------------------------------------------------------------------


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [int(child), *_descendants(int(child))]
    return out


def rss_mb(stack: Stack) -> dict[str, float]:
    """Each service's resident memory, its process and any children, in MB."""
    result = {}
    for service, process in stack.processes.items():
        pids = [process.pid, *_descendants(process.pid)]
        result[service] = round(sum(_rss_kb(p) for p in pids) / 1024, 1)
    return result


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used (fields 14 and 15 of its stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The servers' processes, by name: their CPU is the datastores' share of a delivery.
DATASTORE_PROCESSES = {"postgres": "postgres", "redis-server": "redis", "beam.smp": "rabbitmq"}


def datastores_cpu_s() -> dict[str, float]:
    used: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            name = DATASTORE_PROCESSES.get((proc / "comm").read_text().strip())
            if name:
                used[name] = used.get(name, 0.0) + _cpu_s(int(proc.name))
    return used


def _ours(comm: str, cmdline: bytes, databases: frozenset[str]) -> bool:
    """Whether a datastore process works for this run: the servers are shared with other
    users, so of PostgreSQL's only the backends of this run's databases and the server's
    own processes (WAL writer, checkpointer, ...) count; Redis and RabbitMQ are one
    process each and count whole."""
    if comm != "postgres":
        return True
    # A backend's title: "postgres: [cluster:] <user> <database> <client(port)> <state>".
    words = cmdline.replace(b"\0", b" ").decode(errors="replace").split()
    if not any("(" in w or w == "[local]" for w in words):
        return True  # the server's own process
    return any(w in databases for w in words)


def datastore_processes_cpu_s(databases: frozenset[str]) -> dict[str, float]:
    """CPU seconds of each datastore process of this run, keyed `<server>/<pid>`."""
    used: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            comm = (proc / "comm").read_text().strip()
            name = DATASTORE_PROCESSES.get(comm)
            if name and _ours(comm, (proc / "cmdline").read_bytes(), databases):
                used[f"{name}/{proc.name}"] = _cpu_s(int(proc.name))
    return used


def cpu_s(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each service (with any children), by this client, and by
    each datastore process of this run on this machine (see `_ours`; `cpu_used` sums them
    by server)."""
    used = {
        service: sum(_cpu_s(p) for p in (process.pid, *_descendants(process.pid)))
        for service, process in stack.processes.items()
    }
    used["client"] = time.process_time()
    if stack.footing.name == "servers":
        databases = frozenset(
            urlsplit(urls["STORE_URL"]).path.strip("/")
            for urls in stack.footing.urls.values()
            if urls.get("STORE_URL", "").startswith("postgres")
        )
        used.update(datastore_processes_cpu_s(databases))
    return used


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds used between two `cpu_s` snapshots, by process name (datastores summed
    by server). A process gone by `after` (a connection closed) is left out, not counted
    as negative; one started meanwhile counts from its start."""
    used: dict[str, float] = {}
    for key, seconds in after.items():
        name = key.split("/", 1)[0]
        used[name] = used.get(name, 0.0) + seconds - before.get(key, 0.0)
    return used


# --- figures -----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def pcts_ms(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(pct(values, q) * 1000, 2) for q in (50, 95, 99)}


@dataclass
class Run:
    """One batch of delivery requests and what became of them."""

    n: int
    started: float = 0.0
    accept_done: float = 0.0
    resumed: float | None = None  # when workflow went on, if it was paused while accepting
    accept_latency: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    post_start: dict[str, float] = field(default_factory=dict)  # id -> POST start
    followed: list[str] = field(default_factory=list)  # the sample whose latency is measured
    readable: dict[str, float] = field(default_factory=dict)  # id -> readable at delivery
    completed: int = 0  # accepted requests readable at the end
    progress: list[tuple[float, int]] = field(default_factory=list)  # (t, processed)
    rss: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    cpu_before: dict[str, float] = field(default_factory=dict)
    cpu_accepted: dict[str, float] = field(default_factory=dict)  # when the last POST ended
    cpu_after: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return len(self.post_start)

    def accept_rate(self) -> float:
        return self.accepted / max(self.accept_done - self.started, 1e-9)

    def e2e(self) -> list[float]:
        """Latency from POST to readable, of the sample."""
        return [self.readable[i] - self.post_start[i] for i in self.readable]

    def e2e_rate(self) -> float:
        """Completions per second over the whole run, or from when workflow went on if it was
        paused (the sample stands for the requests sent around it)."""
        if not self.readable:
            return 0.0
        share = len(self.readable) / max(len(self.followed), 1)
        start = self.started if self.resumed is None else self.resumed
        return share * self.accepted / (max(self.readable.values()) - start)

    def sustained_rate(self) -> float:
        """Completions per second between 10% and 90% of the sample readable (the workflow's
        own counter also counts retries, so it is plotted, not used here)."""
        done = sorted(self.readable.values())
        lo, hi = int(0.1 * len(self.followed)), int(0.9 * len(self.followed))
        if len(done) <= hi or done[hi] <= done[lo]:
            return self.e2e_rate()
        return (hi - lo) / (done[hi] - done[lo]) * self.accepted / len(self.followed)

    def cpu_ms_per_delivery(self, until: dict[str, float] | None = None) -> dict[str, float]:
        """CPU time per completed delivery, by process: what a request costs, whatever the
        machine's core count (the client's share includes its polling). Counted until the
        sample is all readable (or `until`), per request accepted; `services` is the six
        services, `all` every process counted (datastores and client too)."""
        done = max(self.accepted, 1)
        used = cpu_used(self.cpu_before, until or self.cpu_after)
        per = {name: round(seconds * 1000 / done, 2) for name, seconds in used.items()}
        all_ms = round(sum(per.values()), 2)
        per["services"] = round(sum(v for k, v in per.items() if k in SERVICES), 2)
        per["all"] = all_ms
        return per

    def accept_cpu_ms(self) -> dict[str, float]:
        """CPU per accepted request while the POSTs ran (with workflow paused, the accept
        path alone): `accept path` is ingestion and the entry point."""
        per = self.cpu_ms_per_delivery(self.cpu_accepted or self.cpu_after)
        per["accept path"] = round(per.get("ingestion", 0.0) + per.get("gateway", 0.0), 2)
        return per

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.n,
            "accepted": self.accepted,
            "completed": self.completed,
            "followed": len(self.followed),
            "errors": self.errors,
            "accept_rate_per_s": round(self.accept_rate(), 1),
            "e2e_rate_per_s": round(self.e2e_rate(), 1),
            "e2e_sustained_per_s": round(self.sustained_rate(), 1),
            "accept_latency_ms": pcts_ms(self.accept_latency),
            "e2e_latency_ms": pcts_ms(self.e2e()),
            "cpu_ms_per_delivery": self.cpu_ms_per_delivery(),
            "accept_cpu_ms": self.accept_cpu_ms(),
        }


# --- load --------------------------------------------------------------------------------


HTTP_ERRORS = (aiohttp.ClientError, TimeoutError)


class Client:
    """Keep-alive HTTP on aiohttp: the client shares the cores with the system it measures,
    and httpx took about ten times the CPU per request."""

    def __init__(self, base_url: str) -> None:
        self._session = aiohttp.ClientSession(
            base_url=base_url,
            timeout=aiohttp.ClientTimeout(total=30.0),
            connector=aiohttp.TCPConnector(limit=WORKERS + 8),
        )

    async def get(self, path: str) -> tuple[int, bytes]:
        async with self._session.get(path) as r:
            return r.status, await r.read()

    async def post(self, path: str, body: Any) -> tuple[int, bytes]:
        return await self.request("POST", path, body)

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        async with self._session.request(method, path, json=body) as r:
            return r.status, await r.read()

    async def aclose(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class Probe:
    """A trivial request and the answer that shows it reached where it was meant to."""

    label: str
    method: str
    path: str
    body: Any
    status: int


# The baseline: the cheapest public route that reaches a service. A reschedule with nothing
# to reschedule is refused by ingestion with 400 before any store or queue call (ingestion's
# router checks `changes()` first); the cheapest GET, an unknown delivery at the delivery
# service, pays a store read (a miss) on top, so it is measured beside it, not used.
BASELINE = Probe(
    "PATCH /api/deliveryrequests/{id} {} (ingestion, 400)",
    "PATCH",
    "/api/deliveryrequests/bench-baseline",
    {},
    400,
)
BASELINE_WHAT = (
    "proxied to ingestion, which checks auth, parses and validates the body and answers 400"
    " before any store or queue call"
)
PROBES = (
    BASELINE,
    Probe(
        "GET /api/deliveries/{unknown} (delivery, 404)", "GET", "/api/deliveries/none", None, 404
    ),
    Probe("GET /healthz (the entry point alone)", "GET", "/healthz", None, 200),
)


async def baseline(stack: Stack, n: int, probe: Probe = BASELINE) -> float:
    """Requests per second of `probe` through the entry point; 0 when they did not get the
    answer meant (a route that fails would measure the failure)."""
    async with Client(stack.url("gateway")) as client:
        remaining = n
        wrong: dict[str, int] = {}

        async def once() -> None:
            try:
                status, _ = await client.request(probe.method, probe.path, probe.body)
            except HTTP_ERRORS as e:
                key = type(e).__name__
            else:
                if status == probe.status:
                    return
                key = str(status)
            wrong[key] = wrong.get(key, 0) + 1

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await once()

        for _ in range(WORKERS):  # warm the pool
            await once()
        wrong.clear()
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        elapsed = time.monotonic() - started
        if wrong:
            print(f"  {probe.label}: answers not {probe.status}: {wrong}")
            return 0.0
        return n / elapsed


async def processed(client: Client) -> int | None:
    try:
        return int(json.loads((await client.get("/api/workflow/progress"))[1])["processed"])
    except (*HTTP_ERRORS, ValueError, KeyError):
        return None


def signal_workflow(stack: Stack, sig: signal.Signals) -> None:
    """SIGSTOP or SIGCONT every workflow replica, its children too."""
    for name in stack.replica_names("workflow"):
        process = stack.processes.get(name)
        if process is None or process.poll() is not None:
            continue
        for pid in (process.pid, *_descendants(process.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


async def deliveries(
    stack: Stack, n: int, rate: float | None = None, *, pause_workflow: bool = False
) -> Run:
    """POST n delivery requests (as fast as WORKERS allow, or at `rate` per second) while
    polling the delivery service for a sample of them, the oldest pending first; then
    check that every accepted one is readable. With `pause_workflow`, workflow is stopped
    while the requests are posted (the queue fills) and goes on once all are: the polling
    starts then."""
    run = Run(n)
    paused = False
    pending: list[str] = []  # accepted, not yet readable, oldest first
    posting_done = asyncio.Event()
    gw = Client(stack.url("gateway"))
    dl = Client(stack.url("delivery"))
    wf = Client(stack.url("workflow"))
    try:
        for _ in range(WORKERS):
            await gw.get("/healthz")
        next_index = 0
        run.started = time.monotonic()

        async def post_worker() -> None:
            nonlocal next_index
            while next_index < n:
                i = next_index
                next_index += 1
                if rate:
                    delay = run.started + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                t0 = time.monotonic()
                try:
                    status, body = await gw.post("/api/deliveryrequests", delivery_request())
                except HTTP_ERRORS as e:
                    key = type(e).__name__
                else:
                    if status == 202:
                        run.accept_latency.append(time.monotonic() - t0)
                        delivery_id = json.loads(body)["deliveryId"]
                        run.post_start[delivery_id] = t0
                        if run.accepted % E2E_SAMPLE == 1 or E2E_SAMPLE == 1:
                            run.followed.append(delivery_id)
                            pending.append(delivery_id)
                        continue
                    key = str(status)
                run.errors[key] = run.errors.get(key, 0) + 1

        async def poller() -> None:
            last_progress = time.monotonic()
            cursor = 0
            while True:
                if not pending:
                    if posting_done.is_set():
                        return
                    await asyncio.sleep(0.05)
                    continue
                # The oldest half a batch, and the rest from a cursor going round the others,
                # so that one slow delivery does not hide the ones done after it.
                head = pending[: POLL_BATCH // 2]
                rest = pending[POLL_BATCH // 2 :]
                cursor = cursor % len(rest) if rest else 0
                batch = head + rest[cursor : cursor + POLL_BATCH - len(head)]
                cursor += POLL_BATCH - len(head)
                answers = await asyncio.gather(
                    *(dl.get(f"/api/deliveries/{i}") for i in batch), return_exceptions=True
                )
                now = time.monotonic()
                done = {
                    i
                    for i, a in zip(batch, answers, strict=True)
                    if isinstance(a, tuple) and a[0] == 200
                }
                for i in done:
                    run.readable[i] = now
                if done:
                    pending[:] = [i for i in pending if i not in done]
                    last_progress = now
                elif now - last_progress > DRAIN_STALL_SECONDS:
                    print(f"  {len(pending)} deliveries not readable after a stall; giving up")
                    return
                await asyncio.sleep(max(0.0, now + POLL_INTERVAL - time.monotonic()))

        async def check_all() -> None:
            """Every accepted request readable: the rest of the run, not only the sample."""
            left = list(run.post_start)
            last_progress = time.monotonic()
            while left and time.monotonic() - last_progress < DRAIN_STALL_SECONDS:
                answers = []
                for k in range(0, len(left), WORKERS):
                    answers += await asyncio.gather(
                        *(dl.get(f"/api/deliveries/{i}") for i in left[k : k + WORKERS]),
                        return_exceptions=True,
                    )
                still = [
                    i
                    for i, a in zip(left, answers, strict=True)
                    if not (isinstance(a, tuple) and a[0] == 200)
                ]
                if len(still) < len(left):
                    last_progress = time.monotonic()
                left = still
                if left:
                    await asyncio.sleep(0.5)
            run.completed = run.accepted - len(left)

        async def sampler() -> None:
            while True:
                # A paused workflow would not answer: only memory is sampled meanwhile.
                count = None if paused else await processed(wf)
                now = time.monotonic()
                if count is not None:
                    run.progress.append((now, count))
                run.rss.append((now, rss_mb(stack)))
                await asyncio.sleep(0.25)

        base = await processed(wf)
        run.progress.append((run.started, base or 0))
        run.cpu_before = cpu_s(stack)
        if pause_workflow:
            signal_workflow(stack, signal.SIGSTOP)
            paused = True
        sampling = asyncio.create_task(sampler())
        polling = None if paused else asyncio.create_task(poller())
        await asyncio.gather(*(post_worker() for _ in range(WORKERS)))
        run.accept_done = time.monotonic()
        run.cpu_accepted = cpu_s(stack)
        posting_done.set()
        if paused:
            signal_workflow(stack, signal.SIGCONT)
            paused = False
            run.resumed = time.monotonic()
            polling = asyncio.create_task(poller())
        await polling
        run.cpu_after = cpu_s(stack)
        await check_all()
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        return run
    finally:
        if paused:
            signal_workflow(stack, signal.SIGCONT)
        for client in (gw, dl, wf):
            await client.aclose()


# --- one footing -------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(stack: Stack, label: str) -> Iterator[None]:
    """Sample every service with py-spy meanwhile, when BENCH_PYSPY names it."""
    if not PYSPY:
        yield
        return
    record = [PYSPY, "record", "--format", "raw", "--nonblocking", "--rate", "200"]
    spies = [
        subprocess.Popen(
            [
                *record,
                *("-o", str(RESULTS / f"profile-{stack.footing.name}-{label}-{name}.txt")),
                *("-p", str(process.pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, process in stack.processes.items()
    ]
    try:
        yield
    finally:
        for spy in spies:  # SIGINT: py-spy writes what it sampled, then exits
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()


def restart_workflow(stack: Stack, concurrency: int) -> None:
    stack.extra_env.setdefault("workflow", {})["WORKFLOW_CONCURRENCY"] = str(concurrency)
    stack.stop("workflow", grace=20)
    stack.start("workflow")
    stack.wait_ready("workflow", within=60)


def bench_footing(footing: Footing, log_dir: Path) -> dict[str, Any]:
    base = _free_base_port()
    stack = Stack(footing, gateway_port=base, base_port=base, log_dir=log_dir)
    for service in SERVICES:  # access logs off: the benchmark measures the work
        stack.extra_env.setdefault(service, {}).setdefault("LOG_LEVEL", "warning")
    # Each service started on its own, as a pod is on its own share of CPU; then all six at
    # once on the same two cores, as after `make run` (the harder case, reported too).
    alone = {}
    for service in SERVICES:
        stack.start(service)
        alone[service] = round(stack.wait_ready(service, within=60), 2)
        stack.stop(service, grace=20)
    together = {s: round(t, 2) for s, t in stack.up(within=90).items()}
    out: dict[str, Any] = {
        "footing": footing.name,
        "readiness_s": alone,
        "readiness_all_at_once_s": together,
    }
    try:
        print(f"  ready alone: {', '.join(f'{s} {t:.2f}s' for s, t in alone.items())}")
        print(f"  ready, all at once: {', '.join(f'{s} {t:.2f}s' for s, t in together.items())}")
        time.sleep(1.0)
        out["idle_rss_mb"] = rss_mb(stack)
        out["probes_per_s"], out["probes_cpu_ms"] = {}, {}
        n_probe = max(N_REQUESTS, 2000)
        for probe in PROBES:
            before = cpu_s(stack)
            rate = round(asyncio.run(baseline(stack, n_probe, probe)), 1)
            used = cpu_s(stack)
            # All the CPU a request cost: entry point, service, datastores and this client.
            cpu = round(sum(cpu_used(before, used).values()) * 1000 / n_probe, 2)
            out["probes_per_s"][probe.label], out["probes_cpu_ms"][probe.label] = rate, cpu
            print(f"  {probe.label}: {rate}/s, {cpu} ms CPU each")
        out["baseline"] = BASELINE.label
        out["baseline_per_s"] = out["probes_per_s"][BASELINE.label]
        per_baseline = max(out["baseline_per_s"], 1e-9)

        print(f"  {N_REQUESTS} delivery requests, {WORKERS} workers ...")
        with profiled(stack, "main"):
            main = asyncio.run(deliveries(stack, N_REQUESTS))
        out["main"] = main.summary()
        out["e2e_ratio"] = round(main.sustained_rate() / per_baseline, 3)

        print(f"  {N_PAUSED} delivery requests with workflow paused, then drained ...")
        with profiled(stack, "paused"):
            paused = asyncio.run(deliveries(stack, N_PAUSED, pause_workflow=True))
        out["paused"] = paused.summary()
        out["accept_ratio"] = round(paused.accept_rate() / per_baseline, 3)
        out["drain_ratio"] = round(paused.sustained_rate() / per_baseline, 3)
        print(f"  {json.dumps(out['paused'])}")
        out["load_rss_mb"] = {
            s: max((sample[s] for _, sample in main.rss if s in sample), default=0.0)
            for s in SERVICES
        }
        out["series"] = {
            "progress": [(round(t - main.started, 3), p) for t, p in main.progress],
            "readable_s": sorted(round(t - main.started, 3) for t in main.readable.values()),
        }
        print(f"  {json.dumps(out['main'])}")

        # Half the rate the system sustains end to end: a load it can keep up with.
        half_rate = max(main.sustained_rate() / 2, 1.0)
        n_half = min(N_REQUESTS, max(300, int(half_rate * 15)))
        print(f"  {n_half} requests at half the end-to-end rate ({half_rate:.0f}/s) ...")
        half = asyncio.run(deliveries(stack, n_half, rate=half_rate))
        out["half_rate"] = {"rate_per_s": round(half_rate, 1), **half.summary()}
        print(f"  {json.dumps(out['half_rate'])}")

        sweep = {}
        for concurrency in CONCURRENCIES:
            restart_workflow(stack, concurrency)
            run = asyncio.run(deliveries(stack, N_SWEEP))
            sweep[str(concurrency)] = run.summary()
            print(
                f"  WORKFLOW_CONCURRENCY={concurrency}: "
                f"{run.sustained_rate():.1f}/s sustained, {run.e2e_rate():.1f}/s overall"
            )
        out["concurrency_sweep"] = sweep
    finally:
        stack.down(grace=20)
    return out


# --- footings ----------------------------------------------------------------------------


def servers_footing() -> tuple[Footing | None, Callable[[], None], str]:
    """The local servers, a database pair and a queue of this run's own; or why not."""
    urls = {
        "postgres": servers.POSTGRES_URL,
        "redis": REDIS_URL,
        "rabbitmq": servers.AMQP_URL,
    }
    missing = [f"{name} at {url}" for name, url in urls.items() if not servers.reachable(url)]
    if missing:
        return None, lambda: None, f"not reachable: {', '.join(missing)}"
    run = uuid.uuid4().hex[:8]
    pg = urls["postgres"].rsplit("/", 1)[0]
    amqp = urls["rabbitmq"]
    queue = f"bench-{run}"
    footing = Footing.servers(postgres=pg, redis=REDIS_URL, amqp=amqp, queue=queue)
    footing.urls["package"]["STORE_URL"] = f"{pg}/bench_{run}_package"
    footing.urls["dronescheduler"]["STORE_URL"] = f"{pg}/bench_{run}_dronescheduler"

    def cleanup() -> None:
        import aio_pika
        import asyncpg
        import redis as redis_client

        async def drop() -> None:
            admin = await asyncpg.connect(f"{pg}/postgres")
            try:
                for service in ("package", "dronescheduler"):
                    await admin.execute(
                        f'DROP DATABASE IF EXISTS "bench_{run}_{service}" WITH (FORCE)'
                    )
            finally:
                await admin.close()

        async def drop_queue() -> None:
            connection = await aio_pika.connect(amqp)
            async with connection:
                channel = await connection.channel()
                for name in (queue, f"{queue}.deadletter"):
                    await channel.queue_delete(name)

        for step in (
            lambda: asyncio.run(drop()),
            lambda: redis_client.Redis.from_url(REDIS_URL).flushdb(),
            lambda: asyncio.run(drop_queue()),
        ):
            try:
                step()
            except Exception as e:  # report and go on cleaning
                print(f"  cleanup: {type(e).__name__}: {e}")

    return footing, cleanup, ""


# --- report ------------------------------------------------------------------------------


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    figures = {
        "accept_ratio": result["accept_ratio"],
        "e2e_ratio": result["e2e_ratio"],
        "e2e_per_s": result["main"]["e2e_sustained_per_s"],
        "p99_accept_half_ms": result["half_rate"]["accept_latency_ms"]["p99"],
        "cpu_ms_per_delivery": result["main"]["cpu_ms_per_delivery"]["all"],
        "readiness_max_s": round(max(result["readiness_s"].values()), 2),
        "idle_rss_max_mb": max(result["idle_rss_mb"].values()),
    }
    out = {}
    for key, (op, target, _) in TARGETS.items():
        value = figures[key]
        met = value >= target if op == ">=" else value <= target
        out[key] = {"value": value, "target": f"{op} {target}", "met": met}
    return out


def print_table(result: dict[str, Any]) -> None:
    m, h, p = result["main"], result["half_rate"], result["paused"]
    print(f"\n=== footing: {result['footing']}  (N={m['requests']}, {WORKERS} workers) ===")
    print(f"{'service':<16}{'ready s':>9}{'all at once':>13}{'idle RSS MB':>13}{'load RSS MB':>13}")
    for s in SERVICES:
        print(
            f"{s:<16}{result['readiness_s'][s]:>9.2f}{result['readiness_all_at_once_s'][s]:>13.2f}"
            f"{result['idle_rss_mb'][s]:>13.1f}{result['load_rss_mb'][s]:>13.1f}"
        )
    rows = [
        *(
            (
                f"{'baseline ' if label == result['baseline'] else ''}{label}",
                f"{rate}/s, {result['probes_cpu_ms'][label]} ms CPU each",
            )
            for label, rate in result["probes_per_s"].items()
        ),
        (
            f"accept, workflow paused (N={p['requests']})",
            f"{p['accept_rate_per_s']}/s = {result['accept_ratio']} x baseline",
        ),
        (
            "drain after, no accepts (10-90%)",
            f"{p['e2e_sustained_per_s']}/s = {result['drain_ratio']} x baseline"
            f" ({p['completed']}/{p['accepted']})",
        ),
        ("accept, workflow running", f"{m['accept_rate_per_s']}/s"),
        (
            "end-to-end, sustained (10-90%)",
            f"{m['e2e_sustained_per_s']}/s = {result['e2e_ratio']} x baseline",
        ),
        ("end-to-end, overall", f"{m['e2e_rate_per_s']}/s ({m['completed']}/{m['accepted']})"),
        ("accept latency p50/p95/p99", "/".join(map(str, m["accept_latency_ms"].values())) + " ms"),
        ("e2e latency p50/p95/p99", "/".join(map(str, m["e2e_latency_ms"].values())) + " ms"),
        (
            f"accept p50/p95/p99 at {h['rate_per_s']}/s",
            "/".join(map(str, h["accept_latency_ms"].values())) + " ms",
        ),
        (
            f"e2e p50/p95/p99 at {h['rate_per_s']}/s",
            "/".join(map(str, h["e2e_latency_ms"].values())) + " ms",
        ),
    ]
    for c, s in result["concurrency_sweep"].items():
        rows.append(
            (
                f"WORKFLOW_CONCURRENCY={c} (N={s['requests']})",
                f"{s['e2e_sustained_per_s']}/s sustained, e2e p99 {s['e2e_latency_ms']['p99']} ms",
            )
        )
    rows += [
        (
            "CPU ms per delivery (accepting and completing)",
            ", ".join(f"{k} {v}" for k, v in m["cpu_ms_per_delivery"].items()),
        ),
        (
            "CPU ms per accept, workflow paused",
            ", ".join(f"{k} {v}" for k, v in p["accept_cpu_ms"].items()),
        ),
    ]
    if m["errors"]:
        rows.append(("errors", json.dumps(m["errors"])))
    for label, value in rows:
        print(f"  {label:<60}{value}")
    print_headline(result)


def print_headline(result: dict[str, Any]) -> None:
    """The figures issue #17 sets targets for, beside the baseline they are ratios to."""
    m, p, h, v = result["main"], result["paused"], result["half_rate"], result["verdicts"]

    def met(key: str) -> str:
        return f"{v[key]['target']:<8} {'met' if v[key]['met'] else 'NOT MET'}"

    rows = [
        ("baseline: " + result["baseline"], f"{result['baseline_per_s']}/s", "1", ""),
        (
            "accepts/s, workflow paused (SIGSTOP)",
            f"{p['accept_rate_per_s']}/s",
            str(result["accept_ratio"]),
            met("accept_ratio"),
        ),
        (
            "end-to-end deliveries/s, sustained",
            f"{m['e2e_sustained_per_s']}/s",
            str(result["e2e_ratio"]),
            f"{met('e2e_ratio')}; {v['e2e_per_s']['target']}/s"
            f" {'met' if v['e2e_per_s']['met'] else 'NOT MET'}",
        ),
        (
            f"p99 accept at half the e2e rate ({h['rate_per_s']}/s)",
            f"{h['accept_latency_ms']['p99']} ms",
            "",
            met("p99_accept_half_ms"),
        ),
        (
            "all CPU per delivery (services, entry, stores, client)",
            f"{m['cpu_ms_per_delivery']['all']} ms",
            "",
            met("cpu_ms_per_delivery"),
        ),
        (
            "accept path CPU per accept (ingestion + entry point)",
            f"{p['accept_cpu_ms']['accept path']} ms",
            "",
            "",
        ),
    ]
    print(f"\n  {'figure':<62}{'value':>12}{'x baseline':>12}   target")
    for label, value, ratio, target in rows:
        print(f"  {label:<62}{value:>12}{ratio:>12}   {target}")
    print("  other targets:")
    for key in ("readiness_max_s", "idle_rss_max_mb"):
        print(f"    {TARGETS[key][2]:<58}{v[key]['value']!s:>12}{'':>12}   {met(key)}")


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    progress = result["series"]["progress"]
    if len(progress) > 1:
        ts = [t for t, _ in progress[1:]]
        rates = [
            (p1 - p0) / max(t1 - t0, 1e-9) for (t0, p0), (t1, p1) in itertools.pairwise(progress)
        ]
        ax1.plot(ts, rates, label="workflow processed/s (incl. retries)")
    readable = result["series"]["readable_s"]
    if readable:
        ax1b = ax1.twinx()
        ax1b.plot(
            readable,
            range(1, len(readable) + 1),
            color="tab:green",
            label=f"readable, 1 in {E2E_SAMPLE} followed (cum.)",
        )
        ax1b.set_ylabel("followed deliveries readable (cumulative)")
    ax1.axhline(370, color="tab:red", linestyle="--", label="target 370/s")
    ax1.set_xlabel("s since first POST")
    ax1.set_ylabel("completions/s")
    ax1.set_title(f"throughput over time ({result['footing']})")
    ax1.legend(loc="upper left")

    groups = {
        "accept": result["main"]["accept_latency_ms"],
        "e2e": result["main"]["e2e_latency_ms"],
        "accept @50%": result["half_rate"]["accept_latency_ms"],
        "e2e @50%": result["half_rate"]["e2e_latency_ms"],
    }
    width = 0.25
    for k, q in enumerate(("p50", "p95", "p99")):
        ax2.bar(
            [x + (k - 1) * width for x in range(len(groups))],
            [g[q] for g in groups.values()],
            width,
            label=q,
        )
    ax2.set_xticks(range(len(groups)), list(groups))
    ax2.set_yscale("log")
    ax2.set_ylabel("ms (log)")
    ax2.axhline(50, color="tab:red", linestyle="--", label="50 ms")
    ax2.set_title("latency percentiles")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    # A SIGTERM (timeout, CI) stops the stack and drops the databases like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(f"bench: N={N_REQUESTS}, sweep N={N_SWEEP} at {CONCURRENCIES}, {WORKERS} workers")
    print(f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (shared machine)")
    print(f"  baseline: {BASELINE.label}, through the entry point: {BASELINE_WHAT}")
    print(f"  paused-accept N={N_PAUSED}, footings {','.join(FOOTINGS)} (BENCH_FOOTINGS=...)")
    status = 0
    for name in FOOTINGS:
        print(f"\n--- {name} ---")
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            cleanup: Callable[[], None] = lambda: None  # noqa: E731
            if name == "embedded":
                footing: Footing | None = Footing.embedded(Path(tmp) / "data")
            else:
                footing, cleanup, reason = servers_footing()
                if footing is None:
                    print(f"  skipped: {reason}")
                    continue
            try:
                result = bench_footing(footing, Path(tmp) / "logs")
            except (RuntimeError, TimeoutError) as e:
                print(f"  the system could not start: {e}")
                status = 1
                continue
            finally:
                cleanup()
        result["verdicts"] = verdicts(result)
        result["settings"] = {"workers": WORKERS, "cpus": os.cpu_count()}
        print_table(result)
        (RESULTS / f"bench-{name}.json").write_text(json.dumps(result, indent=2))
        png = RESULTS / f"bench-{name}.png"
        plot(result, png)
        print(f"  wrote {RESULTS / f'bench-{name}.json'} and {png}")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
