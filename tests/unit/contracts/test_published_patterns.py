"""The patterns the services publish mean the same in every regex engine that reads them.

Clients and fuzzers read patterns as JSON Schema (ECMA-262); pydantic checks them with Rust's
regex engine; Python's re sits in between. Shorthand classes such as \\s and \\d differ between
the three (U+0085 is whitespace to Rust and Python, not to ECMA-262), so a schema-valid request
could be refused: schemathesis found exactly that for the notify-me e-mail address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError

from delivery.main import create_app as delivery_app
from dronescheduler.main import create_app as dronescheduler_app
from ingestion.main import create_app as ingestion_app
from package.main import create_app as package_app
from workflow.main import create_app as workflow_app

ENGINE_DEPENDENT = re.compile(r"\\[sSdDwWbB]")


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


def published_patterns() -> list[str]:
    apps = (ingestion_app, workflow_app, package_app, dronescheduler_app, delivery_app)
    found: set[str] = set()
    for create_app in apps:
        found.update(_patterns(create_app().openapi()))
    return sorted(found)


PATTERNS = published_patterns()


def test_the_services_publish_patterns() -> None:
    # Guards the walk above: if it found nothing, the tests below would pass vacuously.
    assert len(PATTERNS) >= 2


@pytest.mark.parametrize("pattern", PATTERNS)
def test_no_pattern_uses_an_engine_dependent_class(pattern: str) -> None:
    assert not ENGINE_DEPENDENT.search(pattern), f"{pattern!r} uses a shorthand class"


# Every character whose class could differ: controls, spaces, separators, and a few others.
SUSPECTS = [
    chr(c)
    for c in (
        *range(0x00, 0x100),
        0x1680,
        *range(0x2000, 0x2010),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
        0xFEFF,
        0x1F60D,
    )
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pydantic_and_python_agree_on_every_suspect_character(pattern: str) -> None:
    checked = TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)])
    # Python's $ also matches before a final newline; ECMA-262's and Rust's do not.
    compiled = re.compile(re.sub(r"\$$", r"\\Z", pattern))
    disagreements = []
    for char in SUSPECTS:
        # Put the character where the e-mail pattern and the key patterns both allow text.
        for candidate in (f"a{char}a@b", f"a@b{char}b", f"ab{char}"):
            try:
                checked.validate_python(candidate)
                rust = True
            except ValidationError:
                rust = False
            if rust != bool(compiled.search(candidate)):
                disagreements.append((pattern, candidate))
    assert not disagreements
