"""Released images by digest: scripts/pin-images.py writes them into the defaults of the
umbrella chart and of compose, and both then use them unless told to use other images.
Before any release (this checkout) the defaults stay the locally built images."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import NAMESPACE, RELEASE, ROOT, SERVICES, UMBRELLA, run_helm

IMAGES = (*SERVICES, "load")
REGISTRY = "ghcr.io/example"
TAG = "v9.8.7"


def digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def images(helm: str, chart: Path, *args: str) -> dict[str, str]:
    done = run_helm(
        helm, "template", RELEASE, str(chart), "-n", NAMESPACE, "--set", "load.enabled=true", *args
    )
    assert done.returncode == 0, done.stderr
    found = {}
    for doc in yaml.safe_load_all(done.stdout):
        if doc and doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            found[doc["metadata"]["name"].removeprefix(f"{RELEASE}-")] = container["image"]
    return found


@pytest.fixture(scope="module")
def pinned(helm: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the charts and compose file after a release's pin step."""
    root = tmp_path_factory.mktemp("release")
    shutil.copytree(ROOT / "charts", root / "charts", ignore=shutil.ignore_patterns("*.tgz"))
    shutil.copy(ROOT / "docker-compose.yml", root / "docker-compose.yml")
    digests = root / "digests"
    digests.mkdir()
    for name in IMAGES:
        (digests / name).write_text(digest(name) + "\n")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "pin-images.py"),
            "--root",
            str(root),
            "--registry",
            REGISTRY,
            "--tag",
            TAG,
            "--digests",
            str(digests),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    for chart in (*SERVICES, "drone-delivery"):
        run_helm(helm, "dependency", "update", "--skip-refresh", str(root / "charts" / chart))
    return root


def test_a_clean_checkout_uses_the_locally_built_images(helm: str) -> None:
    found = images(helm, UMBRELLA)
    assert found == {name: f"localhost/drone-delivery/{name}:0.1.0" for name in IMAGES}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert all("@sha256:" not in s["image"] for s in compose["services"].values())


def test_after_a_release_the_chart_defaults_to_the_pinned_digests(helm: str, pinned: Path) -> None:
    found = images(helm, pinned / "charts" / "drone-delivery")
    assert found == {
        name: f"{REGISTRY}/drone-delivery-{name}:{TAG}@{digest(name)}" for name in IMAGES
    }


@pytest.mark.parametrize(
    ("own", "moved"),
    [
        ("global.image.registry=myregistry.azurecr.io", IMAGES),
        ("global.image.tag=abc123", IMAGES),
        ("ingestion.image.registry=myregistry.azurecr.io", ("ingestion",)),
    ],
)
def test_own_images_win_over_the_pinned_ones(
    helm: str, pinned: Path, own: str, moved: tuple[str, ...]
) -> None:
    found = images(helm, pinned / "charts" / "drone-delivery", "--set", own)
    assert {name for name, ref in found.items() if "@sha256:" not in ref} == set(moved), found


def test_after_a_release_compose_defaults_to_the_pinned_digests(pinned: Path) -> None:
    compose: dict[str, Any] = yaml.safe_load((pinned / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in SERVICES:
        assert services[name]["image"] == f"{REGISTRY}/drone-delivery-{name}:{TAG}@{digest(name)}"
    assert services["locust"]["image"] == f"{REGISTRY}/drone-delivery-load:{TAG}@{digest('load')}"
    # Building locally is asked for with docker-compose.build.yml, which names local images.
    build: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.build.yml").read_text())
    assert set(build["services"]) == {*SERVICES, "locust"}
    assert all("build" in s and "@" not in s["image"] for s in build["services"].values())


def test_a_bad_digest_is_refused(tmp_path: Path) -> None:
    for name in IMAGES:
        (tmp_path / name).write_text("sha256:short\n")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "pin-images.py"),
            "--root",
            str(tmp_path),
            "--registry",
            REGISTRY,
            "--tag",
            TAG,
            "--digests",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "is not a sha256 digest" in done.stderr
