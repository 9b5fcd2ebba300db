"""Injected faults switched on a running service (chassis/faults): through its internal port
only, with the admin role when it checks tokens, shown on /metrics, driven by
`python -m chassis.faults`. Each test starts its own package service (a process, as `make run`
starts it) on SQLite, with FAULT_SWITCHES=true and a public port beside the internal one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from launcher.stack import Footing, Stack
from tests.e2e.conftest import _free_base_port
from tests.identity import ADMIN, WRITER, IdentityProvider

ATTEMPTS = 200


def _package(tmp: Path, env: dict[str, str]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """(internal, public) clients of a package service started with `env`."""
    base = _free_base_port(count=8)
    public = base + 7
    stack = Stack(
        Footing.embedded(tmp / "data"),
        gateway_port=base,
        base_port=base,
        log_dir=tmp / "logs",
        extra_env={"package": {"FAULT_SWITCHES": "true", "PUBLIC_PORT": str(public), **env}},
    )
    stack.start("package")
    try:
        stack.wait_ready("package")
        inside = httpx.Client(base_url=stack.url("package"), timeout=10)
        outside = httpx.Client(base_url=f"http://127.0.0.1:{public}", timeout=10)
        with inside, outside:
            yield inside, outside
    finally:
        stack.down(grace=10)


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    yield from _package(tmp_path_factory.mktemp("faults"), {})


@pytest.fixture
def package(started: tuple[httpx.Client, httpx.Client]) -> tuple[httpx.Client, httpx.Client]:
    """The module's service, its faults cleared (the tests share it)."""
    assert started[0].delete("/internal/faults").status_code == 200
    return started


def faults(internal: httpx.Client, *args: str, token: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FAULTS_URL": str(internal.base_url), "FAULTS_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "chassis.faults", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def gauge(internal: httpx.Client, name: str) -> float:
    text = internal.get("/metrics").text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not on /metrics"
    return float(found.group(1))


def unavailable(client: httpx.Client, path: str, attempts: int = ATTEMPTS) -> int:
    """How many of `attempts` GETs were answered with the injected 503."""
    count = 0
    for _ in range(attempts):
        r = client.get(path)
        if r.status_code == 503:
            assert r.json()["detail"] == "injected fault" and r.headers["Retry-After"] == "0"
            count += 1
        else:
            assert r.status_code == 404, r.text  # no such package: the route itself answered
    return count


def test_faults_switched_at_run_time_fail_requests_at_the_rate_and_show_on_metrics(
    package: tuple[httpx.Client, httpx.Client],
) -> None:
    internal, _ = package
    path = "/api/packages/none?ownerId=someone"
    assert unavailable(internal, path, 50) == 0
    assert gauge(internal, "injected_fault_error_rate") == 0

    done = faults(internal, "set", "package", "error_rate=0.5", "routes=^/api/packages")
    assert done.returncode == 0, done.stderr
    assert '"errorRate": 0.5' in done.stdout and '"routes": "^/api/packages"' in done.stdout
    # 200 tries at 0.5: 100 expected, sd 7; 58-142 is six sd either side.
    assert 58 <= unavailable(internal, path) <= 142
    assert gauge(internal, "injected_fault_error_rate") == 0.5
    # The probes, the scrape and the switch itself are never failed.
    for exempt in ("/health/ready", "/metrics", "/internal/faults"):
        assert all(internal.get(exempt).status_code == 200 for _ in range(30)), exempt

    # A PUT changes only what it names: the rate and routes stay.
    done = faults(internal, "set", "package", "latency_ms=300")
    assert done.returncode == 0, done.stderr
    shown = internal.get("/internal/faults").json()
    assert shown == {"errorRate": 0.5, "latencyMs": 300, "routes": "^/api/packages"}
    assert gauge(internal, "injected_fault_latency_seconds") == 0.3
    started = time.monotonic()
    internal.get(path)
    assert time.monotonic() - started >= 0.3

    done = faults(internal, "clear", "package")
    assert done.returncode == 0, done.stderr
    assert unavailable(internal, path, 100) == 0
    assert gauge(internal, "injected_fault_error_rate") == 0
    assert gauge(internal, "injected_fault_latency_seconds") == 0
    assert '"errorRate": 0.0' in faults(internal, "show", "package").stdout


def test_bad_switches_are_refused_naming_the_field(
    package: tuple[httpx.Client, httpx.Client],
) -> None:
    internal, _ = package
    for body, field in (
        ({"errorRate": 1.5}, "errorRate"),
        ({"latencyMs": -1}, "latencyMs"),
        ({"routes": "(unclosed"}, "routes"),
        ({"errorrate": 0.3}, "errorrate"),
    ):
        r = internal.put("/internal/faults", json=body)
        assert r.status_code == 400 and field in r.json()["detail"], (body, r.text)
    assert internal.get("/internal/faults").json()["errorRate"] == 0.0
    done = faults(internal, "set", "package", "error_rate=lots")
    assert done.returncode != 0 and "error_rate" in done.stderr


def test_the_switch_is_not_served_on_the_public_port(
    package: tuple[httpx.Client, httpx.Client],
) -> None:
    internal, public = package
    for method in ("GET", "PUT", "DELETE"):
        r = public.request(method, "/internal/faults", json={"errorRate": 1})
        assert r.status_code == 404 and "no public API" in r.json()["detail"], method
    assert internal.get("/internal/faults").json()["errorRate"] == 0.0


def test_with_authentication_on_the_switch_takes_the_admin_role(tmp_path: Path) -> None:
    with IdentityProvider() as idp:
        # Package checks no tokens of its own: AUTH_ADMIN_ROLE names its operators' role.
        for internal, _ in _package(tmp_path, {**idp.settings(), "AUTH_ADMIN_ROLE": ADMIN}):
            assert internal.get("/internal/faults").status_code == 401
            writer = idp.bearer("someone", scopes=WRITER)
            r = internal.put("/internal/faults", json={"errorRate": 1}, headers=writer)
            assert r.status_code == 403 and ADMIN in r.json()["detail"], r.text
            refused = faults(internal, "set", "package", "error_rate=1", token=idp.token("someone"))
            assert refused.returncode == 1 and "403" in refused.stderr
            assert internal.get("/api/packages/none").status_code == 404  # still off

            done = faults(
                internal, "set", "package", "error_rate=1", token=idp.token("ops", roles=[ADMIN])
            )
            assert done.returncode == 0, done.stderr
            assert unavailable(internal, "/api/packages/none", 20) == 20
            assert gauge(internal, "injected_fault_error_rate") == 1


def test_without_fault_switches_there_is_no_route(tmp_path: Path) -> None:
    for internal, _ in _package(tmp_path, {"FAULT_SWITCHES": "false"}):
        assert internal.put("/internal/faults", json={"errorRate": 1}).status_code == 404
        assert gauge(internal, "injected_fault_error_rate") == 0
