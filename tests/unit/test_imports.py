"""Which packages under services/ may import which: the floor plan, checked on the code.

A service imports the chassis, the contracts and itself; never another service or the
gateway, so each image carries only its own code (docker/service.Dockerfile copies just
those three). The gateway is a service like the others. The chassis and the contracts
import nothing of ours but themselves: the chassis is domain-free, and a contract that
needed a service's code would not be a contract. Only the launcher, which starts them all
in one process, may import every package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
SHARED = frozenset({"chassis", "contracts"})


def packages(root: Path) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/__init__.py"))


def allowed(package: str, ours: list[str]) -> frozenset[str]:
    if package == "launcher":
        return frozenset(ours)
    if package in SHARED:
        return frozenset({package})
    return SHARED | {package}


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute import, at module level or inside code."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def forbidden_imports(root: Path, package: str) -> list[str]:
    """Each import in `package` of one of our packages it may not import, as file:line."""
    ours = packages(root)
    permitted = allowed(package, ours)
    found = []
    for source in sorted((root / package).rglob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for line, name in imported(tree):
            if name in ours and name not in permitted:
                found.append(f"{source.relative_to(root)}:{line} imports {name}")
    return found


def test_every_package_is_known() -> None:
    # A new package gets its rule here on purpose, not by default.
    assert packages(SERVICES) == sorted(
        {
            "chassis",
            "contracts",
            "delivery",
            "dronescheduler",
            "gateway",
            "ingestion",
            "launcher",
            "package",
            "workflow",
        }
    )


@pytest.mark.parametrize("package", packages(SERVICES))
def test_a_package_imports_only_what_it_may(package: str) -> None:
    assert forbidden_imports(SERVICES, package) == []


def test_a_service_importing_another_service_or_the_gateway_is_named(tmp_path: Path) -> None:
    for name in ("chassis", "contracts", "delivery", "gateway", "ingestion", "launcher"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "ingestion" / "main.py").write_text(
        "import json\n"
        "from chassis.app import create_service_app\n"
        "from contracts import routes\n"
        "from . import config\n"
        "from ingestion.config import Settings\n"
        "from gateway.routes import routed_to\n"
        "def late():\n"
        "    import delivery.service\n"
    )
    (tmp_path / "chassis" / "app.py").write_text("from contracts.messages import Operation\n")
    (tmp_path / "contracts" / "routes.py").write_text("import chassis.http\n")
    (tmp_path / "launcher" / "stack.py").write_text("import delivery, gateway, ingestion\n")
    assert forbidden_imports(tmp_path, "ingestion") == [
        "ingestion/main.py:6 imports gateway",
        "ingestion/main.py:8 imports delivery",
    ]
    assert forbidden_imports(tmp_path, "chassis") == ["chassis/app.py:1 imports contracts"]
    assert forbidden_imports(tmp_path, "contracts") == ["contracts/routes.py:1 imports chassis"]
    assert forbidden_imports(tmp_path, "launcher") == []
