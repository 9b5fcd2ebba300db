"""The infrastructure checks' tools: pycep-parser (Bicep) and jsonschema, from the venv
scripts/check-infra.sh installs into build/tools/infra/venv (not the project's lock).
Without it these tests skip with the reason on a laptop and fail in CI (CI=true)."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TOOLS_PYTHON = ROOT / "build" / "tools" / "infra" / "venv" / "bin" / "python"
BICEP_TOOLS = Path(__file__).with_name("bicep_tools.py")

Bicep = dict[str, Any]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tools() -> str:
    if not TOOLS_PYTHON.is_file():
        reason = f"{TOOLS_PYTHON.relative_to(ROOT)} missing (run scripts/check-infra.sh once)"
        if in_ci():
            pytest.fail(f"required tool missing: {reason}", pytrace=False)
        pytest.skip(reason)
    return str(TOOLS_PYTHON)


@cache
def _parse_all() -> dict[str, Bicep]:
    files = sorted(str(p.relative_to(ROOT)) for p in INFRA.rglob("*.bicep"))
    out = subprocess.run(
        [require_tools(), str(BICEP_TOOLS), "parse", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    parsed: dict[str, Bicep] = json.loads(out.stdout)
    return parsed


@pytest.fixture(scope="session")
def bicep() -> dict[str, Bicep]:
    """Every .bicep file under infra/, parsed: {"infra/main.bicep": {...}, ...}."""
    require_tools()
    return _parse_all()


@pytest.fixture(scope="session")
def main_bicep(bicep: dict[str, Bicep]) -> Bicep:
    return bicep["infra/main.bicep"]


def schema_errors(schema: Path, instance: Any, tmp_path: Path) -> list[str]:
    data = tmp_path / f"instance-{schema.parent.name}.json"
    data.write_text(json.dumps(instance))
    out = subprocess.run(
        [require_tools(), str(BICEP_TOOLS), "validate", str(schema), str(data)],
        capture_output=True,
        text=True,
    )
    if out.returncode not in (0, 1):
        raise RuntimeError(out.stderr)
    return [line for line in out.stdout.splitlines() if line.strip()]


def leaves(expression: Any) -> set[str]:
    """Every name and literal in a pycep expression tree (identifiers are plain strings)."""
    if isinstance(expression, dict):
        return set().union(*(leaves(v) for k, v in expression.items() if k != "type"))
    if isinstance(expression, list):
        return set().union(*(leaves(v) for v in expression)) if expression else set()
    return {str(expression)}
