"""Before and after, measured alike: `BENCH_BASE=/path/to/checkout make bench-compare`.

Runs this checkout's benchmark (tests/benchmarks/bench.py) alternately on the services of
the other checkout (before) and of this one (after), ROUNDS times each, before first, so
both meet the same load on the shared machine; then prints each run's figures and their
medians side by side (each run's results are kept in results/bench/compare/). The other checkout needs its own `make setup` (its .venv is what
runs its services). Other BENCH_* settings (BENCH_FOOTINGS, BENCH_REQUESTS, ...) apply to
every run; the sweep is off unless BENCH_CONCURRENCIES is set.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[2]
BASE = Path(os.environ["BENCH_BASE"]).resolve() if os.environ.get("BENCH_BASE") else None
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
FOOTINGS = os.environ.get("BENCH_FOOTINGS", "servers").split(",")

# (label, where in a footing's result), the headline figures of bench.py.
FIGURES: list[tuple[str, tuple[str, ...]]] = [
    ("baseline /s", ("baseline_per_s",)),
    ("accepts /s, workflow paused", ("paused", "accept_rate_per_s")),
    ("accepts x baseline", ("accept_ratio",)),
    ("end-to-end /s, sustained", ("main", "e2e_sustained_per_s")),
    ("end-to-end x baseline", ("e2e_ratio",)),
    ("p99 accept at half e2e rate, ms", ("half_rate", "accept_latency_ms", "p99")),
    ("all CPU per delivery, ms", ("main", "cpu_ms_per_delivery", "all")),
    ("accept path CPU per accept, ms", ("paused", "accept_cpu_ms", "accept path")),
    ("  ingestion, ms", ("paused", "accept_cpu_ms", "ingestion")),
    ("  entry point, ms", ("paused", "accept_cpu_ms", "gateway")),
]


def _figure(result: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


def run_once(checkout: Path, results: Path) -> dict[str, dict[str, Any]]:
    """One benchmark run of `checkout`'s services; its results by footing."""
    python = checkout / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `make setup` in {checkout}")
    env = {**os.environ, "BENCH_RESULTS": str(results), "BENCH_FOOTINGS": ",".join(FOOTINGS)}
    env.setdefault("BENCH_CONCURRENCIES", "")
    # cwd here: this checkout's benchmark; its services from the checkout's own venv.
    subprocess.run([str(python), "-m", "tests.benchmarks.bench"], cwd=HERE, env=env, check=True)
    return {
        name: json.loads((results / f"bench-{name}.json").read_text())
        for name in FOOTINGS
        if (results / f"bench-{name}.json").exists()
    }


def print_comparison(footing: str, runs: dict[str, list[dict[str, Any]]]) -> None:
    """Each run in the order it ran (before 1, after 1, before 2, ...), then the medians."""
    order = [(side, k) for k in range(max(len(v) for v in runs.values())) for side in runs]
    order = [(side, k) for side, k in order if k < len(runs[side])]
    print(f"\n=== {footing}: before = {BASE}, after = {HERE} ===")
    heads = "".join(f"{f'{side} {k + 1}':>11}" for side, k in order)
    print(f"  {'figure':<36}{heads}{'median before / after':>26}")
    for label, path in FIGURES:
        cells = []
        for side, k in order:
            value = _figure(runs[side][k], path)
            cells.append("-" if value is None else f"{value:g}")
        medians = []
        for results in runs.values():
            known = [v for v in (_figure(r, path) for r in results) if v is not None]
            medians.append(f"{statistics.median(known):g}" if known else "-")
        print(f"  {label:<36}" + "".join(f"{c:>11}" for c in cells) + f"{' / '.join(medians):>26}")


def main() -> int:
    if BASE is None:
        print("bench-compare: set BENCH_BASE to the other checkout (e.g. a worktree of main)")
        return 2
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        f: {"before": [], "after": []} for f in FOOTINGS
    }
    # Each run's results (and profiles, with BENCH_PYSPY) kept: RESULTS/compare/<side>-<k>.
    out = Path(os.environ.get("BENCH_RESULTS", "results/bench")) / "compare"
    for k in range(ROUNDS):
        for side, checkout in (("before", BASE), ("after", HERE)):
            print(f"\n##### round {k + 1}/{ROUNDS}: {side} ({checkout})", flush=True)
            got = run_once(checkout, (out / f"{side}-{k + 1}").resolve())
            for footing, result in got.items():
                runs[footing][side].append(result)
    for footing, sides in runs.items():
        if any(sides.values()):
            print_comparison(footing, sides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
