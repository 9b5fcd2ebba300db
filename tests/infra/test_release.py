"""The release workflow publishes every image for both platforms, signed, with SBOM and
provenance, and pins what it pushed: what the linters in scripts/check-infra.sh cannot say."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml

from tests.infra.conftest import ROOT

RELEASE = ROOT / ".github" / "workflows" / "release.yml"
SERVICES = ("ingestion", "workflow", "package", "dronescheduler", "delivery")


@pytest.fixture(scope="module")
def release() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(RELEASE.read_text())
    return data


def step(job: dict[str, Any], uses: str) -> dict[str, Any]:
    (found,) = [s for s in job["steps"] if s.get("uses", "").startswith(uses)]
    return found


def test_runs_on_release_tags_only(release: dict[Any, Any]) -> None:
    # PyYAML reads the `on` key as True.
    assert release[True] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {"contents": "read"}


def test_every_image_for_both_platforms_with_sbom_and_provenance(release: dict[Any, Any]) -> None:
    images = release["jobs"]["images"]
    assert images["strategy"]["matrix"]["image"] == [*SERVICES, "load"]
    build = step(images, "docker/build-push-action")["with"]
    assert set(build["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["push"] is True
    assert build["sbom"] is True
    assert build["provenance"] == "mode=max"
    assert step(images, "docker/setup-qemu-action")["with"]["platforms"] == "arm64"
    step(images, "docker/setup-buildx-action")
    for dockerfile in ("docker/service.Dockerfile", "docker/load.Dockerfile"):
        assert dockerfile in RELEASE.read_text() and (ROOT / dockerfile).is_file()


def test_signed_keyless_with_the_jobs_own_identity(release: dict[Any, Any]) -> None:
    text = RELEASE.read_text()
    assert not re.search(r"\$\{\{[^}]*\bsecrets\.", text), "no stored secrets"
    images = release["jobs"]["images"]
    assert images["permissions"] == {"contents": "read", "packages": "write", "id-token": "write"}
    step(images, "sigstore/cosign-installer")
    sign = next(s["run"] for s in images["steps"] if "cosign sign" in s.get("run", ""))
    assert 'cosign sign --yes "$NAME@$DIGEST"' in sign  # by digest, not by tag
    assert "--key" not in sign  # keyless: Fulcio certificate from the OIDC token
    assert "token.actions.githubusercontent.com" in sign  # and verified against it
    login = step(images, "docker/login-action")["with"]
    assert login["registry"] == "ghcr.io" and login["password"] == "${{ github.token }}"
    # Only the image jobs can mint an OIDC token.
    assert "id-token" not in release["jobs"]["pin"]["permissions"]


def test_pins_what_it_pushed(release: dict[Any, Any]) -> None:
    pin = release["jobs"]["pin"]
    assert pin["needs"] == "images"
    run = "\n".join(s.get("run", "") for s in pin["steps"])
    assert "scripts/pin-images.py" in run and "--digests digests" in run
    assert "gh pr create" in run


def test_the_load_image_installs_the_locked_locust() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (locked,) = [p["version"] for p in lock["package"] if p["name"] == "locust"]
    dockerfile = (ROOT / "docker" / "load.Dockerfile").read_text()
    match = re.search(r"^ARG LOCUST_VERSION=(\S+)$", dockerfile, re.M)
    assert match, "docker/load.Dockerfile has no ARG LOCUST_VERSION"
    assert match.group(1) == locked
