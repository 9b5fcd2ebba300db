"""Starting and stopping: readiness while draining, and Ctrl-C on `make run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import System, _free_base_port, eventually


def test_a_draining_service_says_not_ready_while_still_serving_then_exits(system: System) -> None:
    stack = system.need_stack()
    stack.stop("package")
    stack.extra_env["package"] = {"DRAIN_SECONDS": "3"}
    try:
        stack.start("package")
        stack.wait_ready("package")
        with system.internal("package") as package:
            stack.signal("package", signal.SIGTERM)
            eventually(
                lambda: package.get("/health/ready").status_code == 503, within=5, what="not ready"
            )
            # Draining, not gone: the load balancer has time to notice.
            assert package.get("/health/live").status_code == 200
            assert package.get("/api/packages/summary/nobody").json() == {"totalWeight": 0.0}
        assert stack.processes["package"].wait(20) == 0
    finally:
        stack.extra_env.pop("package", None)
        stack.start("package")
        stack.wait_ready("package")


@pytest.mark.skipif(os.environ.get("E2E_BASE_URL") is not None, reason="starts its own system")
def test_ctrl_c_on_make_run_stops_every_process(tmp_path: Path) -> None:
    base = _free_base_port()
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "launcher",
            "--port",
            str(base),
            "--base-port",
            str(base),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(timeout=2) as client:

            def up() -> bool:
                assert launcher.poll() is None, "the launcher exited while starting"
                try:
                    return client.get(f"http://127.0.0.1:{base}/health/ready").status_code == 200
                except httpx.TransportError:
                    return False

            eventually(up, within=60, what="make run up")
        children = _children(launcher.pid)
        assert len(children) == 6, children
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(60) == 0
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in children if _alive(p)], "a service outlived Ctrl-C"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: it only waits for its parent to read its status.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
