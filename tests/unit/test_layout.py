"""The unit tests mirror the code: tests/unit/<package>/test_<module>[_<aspect>].py tests
services/<package>/<module>.py, so the tests of a module are found by its name alone.

The few files that check a whole package, or the repository, are named here with why.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "tests" / "unit"

ACROSS = {
    "test_imports.py": "which package may import which, over all of services/",
    "test_layout.py": "this file",
    "chassis/test_domain_free.py": "every chassis module names nothing of the domain",
    "chassis/test_observability_config.py": "dashboards and scrape configs against the metrics",
    "chassis/queue/test_naming.py": "the queue package's naming rule, every adapter",
    "contracts/test_published_patterns.py": "every pattern the contracts publish",
    "docs/test_links.py": "the documents, not a module",
    "docs/test_settings_tables.py": "the services' READMEs against their config.py",
}


def misplaced() -> list[str]:
    found = []
    for test in sorted(UNIT.rglob("test_*.py")):
        rel = test.relative_to(UNIT)
        if rel.as_posix() in ACROSS:
            continue
        package = ROOT / "services" / rel.parent
        names = (
            [p.stem for p in package.glob("*.py")]
            + [p.name for p in package.iterdir() if p.is_dir()]
            if package.is_dir() and rel.parent.parts
            else []
        )
        tested = rel.stem.removeprefix("test_")
        if not any(tested == n or tested.startswith(n + "_") for n in names):
            found.append(rel.as_posix())
    return found


def test_every_unit_test_file_is_named_after_the_module_it_tests() -> None:
    assert misplaced() == [], "move each to tests/unit/<package>/test_<module>.py"


def test_every_exception_still_exists() -> None:
    assert [name for name in ACROSS if not (UNIT / name).exists()] == []
