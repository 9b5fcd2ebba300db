"""`docker compose --profile load up`: Locust runs the load scenarios against the stack's
gateway and keeps an HTML report of the run in its volume.

scripts/compose-test.sh runs this against the stack it brought up (it sets COMPOSE_CMD);
a short headless run (LOAD_HEADLESS=true) so that it ends by itself.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

COMPOSE = shlex.split(os.environ.get("COMPOSE_CMD", ""))

pytestmark = pytest.mark.skipif(
    not COMPOSE, reason="needs the compose stack of scripts/compose-test.sh (COMPOSE_CMD)"
)


def compose(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [*COMPOSE, "--profile", "load", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_headless_run_keeps_its_report(tmp_path: Path) -> None:
    settings = {
        "LOAD_HEADLESS": "true",
        "LOAD_USERS": "4",
        "LOAD_SPAWN_RATE": "4",
        "LOAD_RATE": "2",
        "LOAD_DURATION": "8s",
        # The UI is not used in this run: any free port will do, the host's 8089 may be taken.
        "LOAD_UI_PORT": "0",
    }
    started = time.monotonic()
    compose("up", "-d", "--no-build", "locust", env=settings)
    try:
        # Locust exits by itself after the run time; its exit code is non-zero on any
        # failed request (wait prints it).
        waited = compose("wait", "locust", env=settings, timeout=120).strip()
        # Compose prints the exit code alone or as 'container "..." exited with status code N'.
        status = waited.split()[-1] if waited else ""
        logs = compose("logs", "--no-color", "locust", env=settings)
        assert status == "0", f"locust exited {status}:\n{logs[-3000:]}"
        compose("cp", "locust:/reports/.", str(tmp_path), env=settings)
    finally:
        compose("rm", "-fsv", "locust", env=settings)
    reports = sorted(tmp_path.glob("load-report-*.html"))
    assert reports, f"no report in the volume: {list(tmp_path.iterdir())}\n{logs[-3000:]}"
    html = reports[-1].read_text()
    assert "POST /api/deliveryrequests" in html
    print(
        f"\nload profile: {reports[-1].name}, {len(html)} bytes, {time.monotonic() - started:.1f} s"
    )
