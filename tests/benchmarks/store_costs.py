"""What a delivery costs the datastores and the queue, counted, and what that comes to on
Cosmos DB and Service Bus (docs/performance.md, "On Azure").

    python -m tests.benchmarks.store_costs [N]      (default 300; the servers footing)
    STORE_COSTS_BASE=<checkout> python -m tests.benchmarks.store_costs [N]

Starts the system on the local PostgreSQL, Redis and RabbitMQ (databases, a Redis database
and a queue of this run's own: bench.py's servers_footing), then in three phases creates N
deliveries, reschedules a third of them and cancels another third, each phase waited on
until workflow has processed every message. Per phase and per operation it prints what each service's store did, from
the services' own counters (store_calls_total, store_documents_total): round trips, and
documents read, written and deleted; the documents' mean size; and PostgreSQL's own
tuple counts for the collections it holds, as a check on the counters.

Cosmos DB bills each document read or written in request units by the document's size,
batched or not: the estimate takes Microsoft's published figures (a point read of 1 KB is
1 RU; writes of 1 KB to 128 KB cost 4.95 to 48.19 RU, indexing every property), adds 0.25 KB
of system properties to each document, and prices a miss as a read. Queries are counted,
not priced. Service Bus counts each message sent, received and completed.

With STORE_COSTS_BASE, the same phases run first on that checkout's services (its .venv,
as in compare.py); a checkout without the counters shows PostgreSQL's counts only.
A benchmark reports; it never fails for a figure.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from launcher.stack import SERVICES, Stack
from tests.benchmarks.bench import Client, delivery_request, processed, servers_footing
from tests.e2e.conftest import _free_base_port

N = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("STORE_COSTS_N", "300"))
BASE = os.environ.get("STORE_COSTS_BASE", "")
RESULTS = Path(os.environ.get("BENCH_RESULTS", "results/bench"))
STORED = ("ingestion", "package", "dronescheduler", "delivery")

# learn.microsoft.com/azure/cosmos-db/understand-request-unit-consumption: document KB ->
# (read RU, write RU), session consistency, default indexing.
COSMOS_RU = [
    (1, 1.00, 4.95),
    (2, 1.04, 6.29),
    (4, 1.14, 6.67),
    (8, 1.33, 7.04),
    (16, 1.67, 9.52),
    (32, 2.19, 11.23),
    (64, 4.76, 22.67),
    (128, 9.95, 48.19),
    (256, 20.28, 98.29),
    (512, 40.95, 184.57),
    (1024, 145.90, 625.00),
    (2048, 291.80, 1250.00),
]
SYSTEM_KB = 0.25  # id, _rid, _self, _etag, _ts, _attachments


def request_units(kb: float, write: bool) -> float:
    """Interpolated between the published sizes; 1 KB and under costs what 1 KB does."""
    column = 2 if write else 1
    sizes = [row[0] for row in COSMOS_RU]
    kb = max(kb + SYSTEM_KB, 1.0)
    at = min(bisect.bisect_left(sizes, kb), len(COSMOS_RU) - 1)
    if at == 0 or sizes[at] <= kb:
        return COSMOS_RU[at][column] * max(kb / sizes[at], 1.0)
    (k0, *lo), (k1, *hi) = COSMOS_RU[at - 1], COSMOS_RU[at]
    share = (kb - k0) / (k1 - k0)
    return lo[column - 1] + share * (hi[column - 1] - lo[column - 1])


# --- counting ----------------------------------------------------------------------------


async def metrics_text(stack: Stack, service: str) -> str:
    async with Client(stack.url(service)) as client:
        return (await client.get("/metrics"))[1].decode()


async def store_counters(stack: Stack) -> dict[tuple[str, str, str, str], float]:
    """(service, collection, operation, calls|documents) -> count, from each /metrics."""
    counts: dict[tuple[str, str, str, str], float] = {}
    for service in STORED:
        for family in text_string_to_metric_families(await metrics_text(stack, service)):
            kind = {"store_calls": "calls", "store_documents": "documents"}.get(family.name)
            for sample in family.samples if kind else ():
                if sample.name.endswith("_total"):
                    key = (service, sample.labels["collection"], sample.labels["operation"], kind)
                    counts[key] = sample.value
    return counts


async def pg_tuples(databases: dict[str, str]) -> dict[tuple[str, str, str], int]:
    """(service, table, inserted|updated|deleted|fetched) -> PostgreSQL's own count, once the
    backends have flushed their statistics (they do within about 10 s of going idle)."""

    async def read() -> dict[tuple[str, str, str], int]:
        out: dict[tuple[str, str, str], int] = {}
        for service, url in databases.items():
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch(
                    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, idx_tup_fetch"
                    " FROM pg_stat_user_tables"
                )
            finally:
                await conn.close()
            for r in rows:
                for what, value in zip(
                    ("inserted", "updated", "deleted", "fetched"), list(r.values())[1:], strict=True
                ):
                    out[(service, r["relname"], what)] = int(value or 0)
        return out

    last, steady_since = await read(), time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and time.monotonic() - steady_since < 12:
        await asyncio.sleep(1)
        now = await read()
        if now != last:
            last, steady_since = now, time.monotonic()
    return last


async def document_sizes(
    databases: dict[str, str], redis_url: str
) -> dict[tuple[str, str], tuple[int, float]]:
    """(service, collection) -> (documents, mean KB of their JSON), from the servers."""
    sizes: dict[tuple[str, str], tuple[int, float]] = {}
    for service, url in databases.items():
        conn = await asyncpg.connect(url)
        try:
            tables = [
                r["relname"] for r in await conn.fetch("SELECT relname FROM pg_stat_user_tables")
            ]
            for table in tables:
                n, mean = await conn.fetchrow(
                    f'SELECT count(*), coalesce(avg(octet_length(body::text)), 0) FROM "{table}"'
                )
                sizes[(service, table)] = (int(n), float(mean) / 1024)
        finally:
            await conn.close()
    r = aioredis.Redis.from_url(redis_url)
    try:
        found: dict[str, list[int]] = {}
        async for key in r.scan_iter(match="*:doc:*", count=1000):
            tag = key.decode().split(":doc:", 1)[0].strip("{}")
            found.setdefault(tag, []).append(int(await r.hstrlen(key, "body")))
        for tag, lengths in found.items():
            sizes[("redis", tag)] = (len(lengths), sum(lengths) / len(lengths) / 1024)
    finally:
        await r.aclose()
    return sizes


# --- the run -----------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    operations: int
    counters: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    tuples: dict[tuple[str, str, str], int] = field(default_factory=dict)
    sizes: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    seconds: float = 0.0


def reschedule_body() -> dict[str, Any]:
    body = delivery_request()
    later = datetime.now(UTC) + timedelta(minutes=random.randint(600, 1200))
    return {
        "pickupLocation": body["pickupLocation"],
        "dropOffLocation": body["dropOffLocation"],
        "deadline": "",
        "pickupTime": later.isoformat(),
    }


async def run_phases(
    stack: Stack, databases: dict[str, str], redis_url: str, has_counters: bool
) -> list[Phase]:
    phases: list[Phase] = []
    ids: list[str] = []
    async with Client(stack.url("gateway")) as gateway, Client(stack.url("workflow")) as workflow:

        async def phase(name: str, requests: list[tuple[str, str, Any]]) -> None:
            before_counters = await store_counters(stack) if has_counters else {}
            before_tuples = await pg_tuples(databases)
            start_processed = await processed(workflow) or 0
            started = time.monotonic()
            for at in range(0, len(requests), 32):
                answers = await asyncio.gather(
                    *(gateway.request(m, p, b) for m, p, b in requests[at : at + 32])
                )
                for (status, body), (method, _, _) in zip(
                    answers, requests[at : at + 32], strict=True
                ):
                    if status not in (200, 202, 204):
                        raise SystemExit(f"{method}: {status} {body[:200]!r}")
                    if name == "create":
                        ids.append(json.loads(body)["deliveryId"])
            deadline = time.monotonic() + 600
            while (await processed(workflow) or 0) < start_processed + len(requests):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: workflow did not process every message in 600 s")
                await asyncio.sleep(0.2)
            seconds = time.monotonic() - started
            after_counters = await store_counters(stack) if has_counters else {}
            after_tuples = await pg_tuples(databases)
            phases.append(
                Phase(
                    name,
                    len(requests),
                    {k: v - before_counters.get(k, 0.0) for k, v in after_counters.items()},
                    {k: v - before_tuples.get(k, 0) for k, v in after_tuples.items()},
                    await document_sizes(databases, redis_url),
                    seconds,
                )
            )

        await phase(
            "create", [("POST", "/api/deliveryrequests", delivery_request()) for _ in range(N)]
        )
        third = N // 3
        await phase(
            "reschedule",
            [("PATCH", f"/api/deliveryrequests/{i}", reschedule_body()) for i in ids[:third]],
        )
        await phase(
            "cancel",
            [("DELETE", f"/api/deliveryrequests/{i}", None) for i in ids[third : 2 * third]],
        )
    return phases


def measure() -> dict[str, Any]:
    """One checkout's phases (the services of the venv running this)."""
    footing, cleanup, why_not = servers_footing()
    if footing is None:
        raise SystemExit(f"store_costs: {why_not}")
    databases = {s: footing.urls[s]["STORE_URL"] for s in ("package", "dronescheduler")}
    redis_url = footing.urls["delivery"]["STORE_URL"]
    with tempfile.TemporaryDirectory() as logs:
        base = _free_base_port()
        stack = Stack(footing, gateway_port=base, base_port=base, log_dir=Path(logs))
        for service in SERVICES:
            stack.extra_env.setdefault(service, {})["LOG_LEVEL"] = "warning"
        try:
            stack.up(within=90)
            # The counters' HELP line is there before any store call is counted.
            has_counters = "store_calls_total" in asyncio.run(metrics_text(stack, "package"))
            phases = asyncio.run(run_phases(stack, databases, redis_url, has_counters))
        finally:
            stack.down(grace=20)
            cleanup()
    return {"n": N, "counted": has_counters, "phases": [_phase_json(p) for p in phases]}


def _phase_json(p: Phase) -> dict[str, Any]:
    """Per operation: each (service, collection)'s calls and documents, and their RU."""
    rows: dict[str, dict[str, float]] = {}
    for (service, collection, op, kind), value in p.counters.items():
        row = rows.setdefault(f"{service}/{collection}", {})
        row[f"{op} {kind}"] = value / p.operations
    sizes = {f"{s}/{c}": kb for (s, c), (_, kb) in p.sizes.items()}
    for name, row in rows.items():
        service, collection = name.split("/", 1)
        kb = sizes.get(name, sizes.get(f"redis/{collection}", 1.0))
        row["mean KB"] = kb
        row["RU"] = row.get("read documents", 0) * request_units(kb, write=False) + (
            row.get("write documents", 0) + row.get("delete documents", 0)
        ) * request_units(kb, write=True)
    tuples = {f"{s}/{t} {what}": v / p.operations for (s, t, what), v in p.tuples.items() if v}
    return {
        "phase": p.name,
        "operations": p.operations,
        "seconds": round(p.seconds, 1),
        "collections": rows,
        "postgres_tuples_per_operation": tuples,
        "sizes_kb": sizes,
        "ru_per_operation": sum(r["RU"] for r in rows.values()),
        "service_bus_operations": 3,  # one message: sent, received, completed
    }


def print_result(label: str, result: dict[str, Any]) -> None:
    print(f"\n== {label}: {result['n']} deliveries, then a third rescheduled, a third cancelled")
    for phase in result["phases"]:
        n = phase["operations"]
        print(f"\n{phase['phase']} ({n} operations, {phase['seconds']} s), per operation:")
        if result["counted"]:
            print(
                f"  {'collection':32} {'calls':>6} {'read':>6} {'written':>8} {'deleted':>8} {'queried':>8} {'KB':>7} {'RU':>7}"
            )
            for name, row in sorted(phase["collections"].items()):
                calls = sum(v for k, v in row.items() if k.endswith(" calls"))
                print(
                    f"  {name:32} {calls:6.2f} {row.get('read documents', 0):6.2f}"
                    f" {row.get('write documents', 0):8.2f} {row.get('delete documents', 0):8.2f}"
                    f" {row.get('query documents', 0):8.2f}"
                    f" {row['mean KB']:7.2f} {row['RU']:7.1f}"
                )
            print(
                f"  Cosmos DB, estimated: {phase['ru_per_operation']:.1f} RU per {phase['phase']}"
            )
        else:
            print("  (no store counters in these services: PostgreSQL's counts only)")
        print(
            "  PostgreSQL tuples: "
            + ", ".join(
                f"{k} {v:.2f}" for k, v in sorted(phase["postgres_tuples_per_operation"].items())
            )
        )
        print(
            "  mean document KB: "
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(phase["sizes_kb"].items()))
        )
        print(
            f"  Service Bus: {phase['service_bus_operations']} operations (send, receive, complete)"
        )


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if BASE and os.environ.get("STORE_COSTS_ROLE") != "base":
        python = Path(BASE).resolve() / ".venv" / "bin" / "python"
        out = RESULTS / "store-costs-base.json"
        env = {**os.environ, "STORE_COSTS_ROLE": "base", "STORE_COSTS_OUT": str(out)}
        subprocess.run(
            [str(python), "-m", "tests.benchmarks.store_costs", str(N)], env=env, check=True
        )
        results["base"] = json.loads(out.read_text())
    result = measure()
    if os.environ.get("STORE_COSTS_ROLE") == "base":
        Path(os.environ["STORE_COSTS_OUT"]).write_text(json.dumps(result, indent=2))
        return 0
    results["this"] = result
    for label, r in results.items():
        print_result(f"{label} ({BASE})" if label == "base" else label, r)
    (RESULTS / "store-costs.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
