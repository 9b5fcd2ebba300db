"""The documents point at things that exist: every relative link (file, and #anchor as
GitHub renders it), and every `make <target>` they tell a reader to run.

A link that breaks when a file moves, or a target renamed in the Makefile, fails here
rather than in a newcomer's hands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[3]

DOCUMENTS = sorted(
    {
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "scripts" / "README.md",
        ROOT / "charts" / "README.md",
        ROOT / "docker" / "README.md",
        ROOT / "infra" / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "services").rglob("README.md"),
    }
)

FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target) and ![alt](target); the target ends at whitespace or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
MAKE = re.compile(r"(?:^|[\s;&(`$])make\s+((?:[A-Z_]+=\S*\s+)*)([a-z][a-z0-9-]*)")
TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", re.MULTILINE)


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    in_code: bool


def lines_of(text: str) -> list[Line]:
    """Each line, and whether it is inside a fenced code block (fences count as code)."""
    out, in_code = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            out.append(Line(number, line, True))
            in_code = not in_code
            continue
        out.append(Line(number, line, in_code))
    return out


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in lines_of(text):
        match = HEADING.match(line.text)
        if line.in_code or not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(document: Path, text: str) -> list[str]:
    """Each relative link in `text` (a document at `document`) that leads nowhere."""
    problems = []
    for line in lines_of(text):
        if line.in_code:
            continue
        for target in LINK.findall(INLINE_CODE.sub("", line.text)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path_part, _, anchor = target.partition("#")
            file = (document.parent / unquote(path_part)).resolve() if path_part else document
            where = f"{document.relative_to(ROOT)}:{line.number}: {target}"
            if not file.exists():
                problems.append(f"{where}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
                problems.append(f"{where}: no heading #{anchor} in {file.name}")
            elif anchor and file.is_dir():
                problems.append(f"{where}: an anchor on a folder")
    return problems


def make_targets_named(text: str) -> set[str]:
    """Every target of a `make ...` command the text shows, in code or inline code."""
    named = set()
    for line in lines_of(text):
        spans = [line.text] if line.in_code else INLINE_CODE.findall(line.text)
        for span in spans:
            named |= {m.group(2) for m in MAKE.finditer(span.strip("`"))}
    return named


def makefile_targets() -> set[str]:
    return set(TARGET.findall((ROOT / "Makefile").read_text()))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(document: Path) -> None:
    assert broken_links(document, document.read_text()) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_make_targets_named_exist(document: Path) -> None:
    missing = make_targets_named(document.read_text()) - makefile_targets()
    assert not missing, f"{document.relative_to(ROOT)} names make targets the Makefile lacks"


def test_the_documents_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in DOCUMENTS}
    assert {"README.md", "docs/README.md", "docs/troubleshooting.md"} <= names
    assert any(n.startswith("services/") for n in names)


def test_a_broken_link_and_a_missing_anchor_are_reported() -> None:
    doc = ROOT / "docs" / "README.md"
    text = (
        "[ok](../README.md) [gone](no-such-file.md) [bad anchor](troubleshooting.md#nowhere)\n"
        "[good anchor](troubleshooting.md#1-make-run-a-port-is-taken)\n"
        "```\n[in code](ignored.md)\n```\n"
    )
    problems = broken_links(doc, text)
    assert len(problems) == 2, problems
    assert "no such file" in problems[0] and "no heading #nowhere" in problems[1]


def test_slugs_follow_github() -> None:
    assert slug("5. `compose up --wait` fails") == "5-compose-up---wait-fails"
    assert slug("Metrics: `GET /metrics` (Prometheus)") == "metrics-get-metrics-prometheus"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_make_commands_are_read_from_code_only() -> None:
    text = "To make sure, run `make run PORT=9000`.\n```sh\nFOO=1 make test-unit\n```\n"
    assert make_targets_named(text) == {"run", "test-unit"}
    assert {"run", "test", "test-unit", "lint"} <= makefile_targets()
