"""End-to-end throughput of the compose stack against the number of workflow replicas.

`make bench-compose` brings the stack up with `docker compose up --scale workflow=N` for each
N in BENCH_WORKFLOW_REPLICAS and runs this once per N: BENCH_REQUESTS delivery requests
(1000) through NGINX, each polled at the public `GET /api/deliveries/{id}` until readable.
It prints one JSON line per run and appends it to results/bench/compose-scale.jsonl.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any, cast

from launcher.stack import Footing, Stack
from tests.benchmarks import bench


class ComposeEntry:
    """What the benchmark's load needs of a stack: every URL is the NGINX entry point, and
    there are no local processes to measure (the containers' memory is docker's to report)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.processes: dict[str, Any] = {}
        self.footing = Footing("compose", {})  # its datastores are in containers: not counted

    def url(self, service: str) -> str:
        return self._url


def main() -> int:
    url, replicas = sys.argv[1], int(sys.argv[2])
    n = int(os.environ.get("BENCH_REQUESTS", "1000"))
    run = asyncio.run(bench.deliveries(cast(Stack, ComposeEntry(url)), n))
    result = {"workflow_replicas": replicas, **run.summary()}
    line = json.dumps(result)
    print(line)
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    with (bench.RESULTS / "compose-scale.jsonl").open("a") as out:
        out.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
