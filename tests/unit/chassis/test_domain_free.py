"""The chassis holds no domain names: what is the application's (its name, its queue, its
permissions) each service passes in. Comments and docstrings may explain with the domain's
words; the code, its names and its strings may not.

"delivery" alone is not on the list: it is also the queue's own word (a message's delivery
count, RabbitMQ's delivery tag), which the chassis has every right to.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHASSIS = Path(__file__).resolve().parents[3] / "services" / "chassis"
DOMAIN_WORDS = frozenset(
    {
        "deliveries",
        "deliveryrequest",
        "deliveryrequests",
        "drone",
        "drones",
        "dronescheduler",
        "package",
        "packages",
        "ingestion",
        "workflow",
        "pickup",
        "dropoff",
        "geocoder",
    }
)
# Words of an identifier or a string: snake_case, camelCase, kebab-case, dotted, paths.
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(node, kinds) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every name and string in the code, docstrings left out (comments
    never reach the tree)."""
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield line, node.value
        elif isinstance(node, ast.Name):
            yield line, node.id
        elif isinstance(node, ast.Attribute):
            yield line, node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield line, node.name
        elif isinstance(node, ast.arg | ast.keyword) and node.arg:
            yield line, node.arg
        elif isinstance(node, ast.alias):
            yield line, node.asname or node.name


def domain_words(source: str) -> list[tuple[int, str]]:
    """(line, word) of each domain word in the code of `source`."""
    found = set()
    for line, text in _texts(ast.parse(source)):
        for word in _WORD.findall(text):
            if word.lower() in DOMAIN_WORDS:
                found.add((line, word.lower()))
    return sorted(found)


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(CHASSIS)) for p in CHASSIS.rglob("*.py"))
)
def test_a_chassis_module_names_nothing_of_the_domain(module: str) -> None:
    assert domain_words((CHASSIS / module).read_text()) == []


def test_the_domain_s_words_are_found_in_names_and_strings_not_in_comments() -> None:
    source = '''"""Docstrings may say deliveries and drones."""
QUEUE = "deliveryrequests"  # comments too: the package
namespace = "drone-delivery"
write_permission: str = "Deliveries.Write"


def connect(dronescheduler_url: str) -> None:
    """Explained in the domain's words: the workflow's queue."""
    return open(url, PackageSize=1)
'''
    assert domain_words(source) == [
        (2, "deliveryrequests"),
        (3, "drone"),
        (4, "deliveries"),
        (7, "dronescheduler"),
        (9, "package"),
    ]
    assert domain_words("delivery_count = message.delivery_count + 1\n") == []
