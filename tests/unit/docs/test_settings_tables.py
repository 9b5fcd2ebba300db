"""Each service's README lists every setting its own Settings class reads, with the default
the code has: a default changed in config.py and not in the table (or a new setting left
out) fails here, not in an operator's hands.

Only the settings a service declares itself are checked; the shared ones are documented
once, in docs/operations.md. A default cell that is prose ("Seattle", "2 MiB") is not
compared, only a plain number or a `literal`.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ["ingestion", "workflow", "package", "dronescheduler", "delivery"]

ROW = re.compile(r"^\|\s*(`[A-Z0-9_]+`(?:\s*,\s*`[A-Z0-9_]+`)*)\s*\|\s*([^|]*?)\s*\|")
NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
LITERAL = re.compile(r"^`([^`]*)`$")


def settings_table(readme: Path) -> dict[str, str]:
    """Variable -> its default cell, from the README's "## Settings" section."""
    rows: dict[str, str] = {}
    section = False
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line.strip() == "## Settings"
            continue
        match = ROW.match(line) if section else None
        if match:
            for name in re.findall(r"`([A-Z0-9_]+)`", match.group(1)):
                rows[name] = match.group(2)
    return rows


def own_defaults(service: str) -> dict[str, Any]:
    """The settings the service's own Settings class declares, by environment name."""
    settings = importlib.import_module(f"{service}.config").Settings
    own = vars(settings).get("__annotations__", {})
    return {name.upper(): settings.model_fields[name].default for name in own}


def mismatch(cell: str, default: Any) -> str | None:
    """Why the documented default is not the code's, or None when it is (or is prose)."""
    if NUMBER.match(cell):
        return None if float(cell) == float(default) else f"{cell} documented, {default} in code"
    literal = LITERAL.match(cell)
    if literal:
        return (
            None if literal.group(1) == str(default) else f"{cell} documented, {default!r} in code"
        )
    return None


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_is_in_the_readme_with_its_default(service: str) -> None:
    table = settings_table(ROOT / "services" / service / "README.md")
    problems = []
    for name, default in own_defaults(service).items():
        if name not in table:
            problems.append(f"{name}: not in the table")
        elif why := mismatch(table[name], default):
            problems.append(f"{name}: {why}")
    assert problems == [], f"services/{service}/README.md, ## Settings: {problems}"


def test_a_wrong_default_and_a_missing_setting_are_told_apart(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "## Settings\n\n| variable | default |\n|---|---|\n"
        "| `PORT` | 8081 |\n| `A`, `B` | `x` |\n| `C` | Seattle |\n\n## Stores\n| `D` | 1 |\n"
    )
    table = settings_table(readme)
    assert table == {"PORT": "8081", "A": "`x`", "B": "`x`", "C": "Seattle"}
    assert mismatch(table["PORT"], 8082) == "8081 documented, 8082 in code"
    assert mismatch(table["PORT"], 8081) is None
    assert mismatch(table["A"], "y") == "`x` documented, 'y' in code"
    assert mismatch(table["C"], 47.6) is None
