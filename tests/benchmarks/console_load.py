"""How fast the console loads on the embedded footing with a realistic backlog, and what it
costs the services with and without a viewer (docs/console.md).

    python -m tests.benchmarks.console_load [DELIVERIES]     (default 5,000; 20 drones)

Starts the system on free ports, books DELIVERIES through the public API (the workflow
plans every one on the fleet, so the drones carry long schedules), then opens /console in
headless Chromium several times, each in a fresh browser context (nothing cached), and
times each load from navigation to the map, the timeline, the pipeline and the deliveries
all drawn (the first load also fills the services' mirrors of their documents, so it is
reported apart). Last, the services' CPU seconds over a quiet spell with no page open, and the same
spell with one console open: prints a table, writes results/bench/console-load.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from launcher.stack import Footing, Stack
from tests.e2e.conftest import GUIDE_REQUEST, _free_base_port
from tests.e2e.test_console import CHROMIUM_ARGS, FLEET_SIZE, chromium

LOADS = 7
QUIET_SECONDS = 20.0
IN_FLIGHT = 16
DRAWN = (
    f"() => document.querySelectorAll('#map [data-drone]').length === {FLEET_SIZE}"
    " && document.querySelectorAll('#timeline .row-label').length > 0"
    " && document.querySelector('#cards [data-metric]') !== null"
    " && document.querySelector('#deliveries tr') !== null"
)


async def book(base_url: str, count: int) -> float:
    """Post `count` delivery requests, IN_FLIGHT at a time; seconds taken."""
    started = time.monotonic()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = {
                **GUIDE_REQUEST,
                "ownerId": f"owner-{n % 50}",
                "pickupLocation": f"bench pickup {n}",
                "dropOffLocation": f"bench drop-off {n}",
            }
            r = await client.post("/api/deliveryrequests", json=body)
            r.raise_for_status()

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(IN_FLIGHT)))
    return time.monotonic() - started


def wait_recorded(base_url: str, count: int, within: float) -> float:
    """Seconds until the delivery service holds `count` deliveries."""
    started = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while time.monotonic() - started < within:
            total = client.get("/api/console/deliveries", params={"limit": 1}).json()["total"]
            if total >= count:
                return time.monotonic() - started
            time.sleep(1.0)
    raise TimeoutError(f"{count} deliveries not recorded within {within:.0f} s")


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """Each process's user + system CPU so far (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, process in stack.processes.items():
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[name] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def spent(stack: Stack, seconds: float) -> dict[str, float]:
    before = cpu_seconds(stack)
    time.sleep(seconds)
    after = cpu_seconds(stack)
    return {name: round(after[name] - before[name], 3) for name in before}


def api_timings(base_url: str) -> dict[str, float]:
    out = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for path in ("fleet", "pipeline", "deliveries?limit=200"):
            times = []
            for _ in range(5):
                started = time.perf_counter()
                client.get(f"/api/console/{path}").raise_for_status()
                times.append(time.perf_counter() - started)
            out[path.split("?")[0]] = round(statistics.median(times) * 1000, 1)
    return out


def main(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        base = _free_base_port()
        stack = Stack(
            Footing.embedded(Path(tmp) / "data"),
            gateway_port=base,
            base_port=base,
            log_dir=Path(tmp) / "logs",
            extra_env={"dronescheduler": {"FLEET_SIZE": str(FLEET_SIZE)}},
        )
        stack.up(within=90)
        url = stack.url("gateway")
        try:
            posted = asyncio.run(book(url, count))
            recorded = wait_recorded(url, count, within=1800)
            print(f"booked {count} deliveries: posted in {posted:.0f} s, all recorded "
                  f"{recorded:.0f} s later", flush=True)  # fmt: skip
            idle = spent(stack, QUIET_SECONDS)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(chromium()), args=CHROMIUM_ARGS)
                loads = []
                for _ in range(LOADS):
                    context = browser.new_context(viewport={"width": 1440, "height": 900})
                    page = context.new_page()
                    page.goto(f"{url}/console", wait_until="commit")
                    page.wait_for_function(DRAWN, timeout=30_000, polling=10)
                    loads.append(page.evaluate("performance.now()") / 1000)
                    context.close()
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                page = context.new_page()
                page.goto(f"{url}/console")
                page.wait_for_function(DRAWN, timeout=30_000)
                watched = spent(stack, QUIET_SECONDS)
                context.close()
                browser.close()
            apis = api_timings(url)
        finally:
            stack.down(grace=20)
    return {
        "deliveries": count,
        "drones": FLEET_SIZE,
        "loadSeconds": {
            # The first load also fills the services' mirrors (every document parsed once).
            "first": round(loads[0], 3),
            "median": round(statistics.median(loads), 3),
            "max": round(max(loads), 3),
            "all": [round(x, 3) for x in loads],
        },
        "apiMilliseconds": apis,
        "cpuSecondsIn20s": {"nobodyWatching": idle, "oneConsoleOpen": watched},
    }


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
    load = result["loadSeconds"]
    print(f"\nconsole load, {result['drones']} drones, {result['deliveries']} deliveries "
          f"(embedded, {LOADS} loads, each in a fresh browser context): median "
          f"{load['median']:.3f} s, max {load['max']:.3f} s, first {load['first']:.3f} s")  # fmt: skip
    print(
        "API medians (ms): " + ", ".join(f"{k} {v}" for k, v in result["apiMilliseconds"].items())
    )
    print(f"\nCPU seconds over {QUIET_SECONDS:.0f} s   nobody watching   one console open")
    cpu = result["cpuSecondsIn20s"]
    for name in cpu["nobodyWatching"]:
        print(
            f"  {name:<16} {cpu['nobodyWatching'][name]:>16.2f} {cpu['oneConsoleOpen'][name]:>18.2f}"
        )
    out = Path(os.environ.get("RESULTS", "results")) / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "console-load.json").write_text(json.dumps(result, indent=2) + "\n")
