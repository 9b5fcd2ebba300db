"""The load image installs the Locust that uv.lock pins (docker/load.Dockerfile)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_load_image_locust_is_the_locked_one() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (locked,) = [p["version"] for p in lock["package"] if p["name"] == "locust"]
    dockerfile = (ROOT / "docker" / "load.Dockerfile").read_text()
    match = re.search(r"^ARG LOCUST_VERSION=(\S+)$", dockerfile, re.M)
    assert match, "docker/load.Dockerfile has no ARG LOCUST_VERSION"
    assert match.group(1) == locked
