"""Render the charts with the real helm binary, once per values combination.

helm comes from build/tools (scripts/check-charts.sh installs it there) or PATH. Without
it the chart tests skip with the reason on a laptop and fail in CI (CI=true): CI must
never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
UMBRELLA = CHARTS / "drone-delivery"
K8S = ROOT / "k8s"
SERVICES = ("ingestion", "workflow", "package", "dronescheduler", "delivery")
NAMESPACE = "drone-delivery"
RELEASE = "drone-delivery"
ENVIRONMENTS = ("dev", "prod")
# values-prod.yaml turns API authentication on and leaves the tenant and the audience to
# the user (the schema refuses it without them): the renders add example ones.
PROD_IDENTITY = Path(__file__).with_name("values-prod-identity.yaml")

Manifest = dict[str, Any]


def find_helm() -> str | None:
    local = ROOT / "build" / "tools" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("helm")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@cache
def _prepare_dependencies(helm: str) -> None:
    # file:// dependencies only: works offline, and makes the umbrella self-contained.
    for chart in (*SERVICES, "drone-delivery"):
        subprocess.run(
            [helm, "dependency", "update", "--skip-refresh", str(CHARTS / chart)],
            check=True,
            capture_output=True,
            text=True,
        )


@pytest.fixture(scope="session")
def helm() -> str:
    found = find_helm()
    if found is None:
        reason = "helm not found in build/tools/bin or PATH (run scripts/check-charts.sh once)"
        if in_ci():
            pytest.fail(f"required tool missing: {reason}", pytrace=False)
        pytest.skip(reason)
    _prepare_dependencies(found)
    return found


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # No user repositories or caches: everything here is file://.
    tools = ROOT / "build" / "tools" / "helm"
    env.update(
        HELM_CONFIG_HOME=str(tools / "config"),
        HELM_CACHE_HOME=str(tools / "cache"),
        HELM_DATA_HOME=str(tools / "data"),
    )
    return subprocess.run([helm, *args], capture_output=True, text=True, env=env)


@cache
def _render(helm: str, environment: str, sets: tuple[str, ...]) -> tuple[Manifest, ...]:
    """`sets` are --set values; one starting with "--" is passed to helm as it is."""
    args = [
        "template",
        RELEASE,
        str(UMBRELLA),
        "-n",
        NAMESPACE,
        "-f",
        str(UMBRELLA / f"values-{environment}.yaml"),
        *(["-f", str(PROD_IDENTITY)] if environment == "prod" else []),
    ]
    for s in sets:
        args += [s] if s.startswith("--") else ["--set", s]
    done = run_helm(helm, *args)
    if done.returncode != 0:
        raise AssertionError(f"helm template failed:\n{done.stderr}")
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., tuple[Manifest, ...]]:
    def rendered(environment: str, *sets: str) -> tuple[Manifest, ...]:
        return _render(helm, environment, tuple(sets))

    return rendered


@pytest.fixture(params=ENVIRONMENTS)
def environment(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def manifests(
    render: Callable[..., tuple[Manifest, ...]], environment: str
) -> tuple[Manifest, ...]:
    return render(environment)


def of_kind(manifests: tuple[Manifest, ...], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") == kind]


def by_name(manifests: tuple[Manifest, ...], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in of_kind(manifests, kind)}


def load_yaml_docs(path: Path) -> list[Manifest]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s_manifests() -> list[Manifest]:
    docs: list[Manifest] = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name.endswith("values.yaml"):  # Helm values for other charts, not manifests
            continue
        docs += load_yaml_docs(path)
    return docs


def values(environment: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((UMBRELLA / f"values-{environment}.yaml").read_text())
    return loaded
