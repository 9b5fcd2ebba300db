#!/usr/bin/env python3
"""Pin released images by digest in the defaults of the umbrella chart and of compose.

    scripts/pin-images.py --registry ghcr.io/<owner> --tag v0.2.0 --digests DIR

DIR holds one file per image (ingestion ... delivery, load), each the image's manifest-list
digest (sha256:...), as .github/workflows/release.yml's image jobs leave them. The block
between the "BEGIN pinned images" and "END pinned images" comments of
charts/drone-delivery/values.yaml and docker-compose.yml is written again; nothing else
changes. Standard library only: it runs on a bare runner.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("ingestion", "workflow", "package", "dronescheduler", "delivery")
IMAGES = (*SERVICES, "load")
VALUES = Path("charts") / "drone-delivery" / "values.yaml"
COMPOSE = Path("docker-compose.yml")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
BLOCK = re.compile(r"(?P<indent>[ \t]*)# BEGIN pinned images[^\n]*\n.*?# END pinned images\n", re.S)


def chart_block(indent: str, registry: str, tag: str, digests: dict[str, str]) -> list[str]:
    lines = ["published:", f"  registry: {registry}", f"  tag: {tag}", "  digests:"]
    lines += [f"    {name}: {digests[name]}" for name in IMAGES]
    return [indent + line for line in lines]


def compose_block(indent: str, registry: str, tag: str, digests: dict[str, str]) -> list[str]:
    lines = ["x-images:"]
    for name in IMAGES:
        anchor = f"&{name}-image"
        lines.append(f"  {name}: {anchor} {registry}/drone-delivery-{name}:{tag}@{digests[name]}")
    return [indent + line for line in lines]


def rewrite(path: Path, make_block, registry: str, tag: str, digests: dict[str, str]) -> None:
    text = path.read_text()
    match = BLOCK.search(text)
    if not match:
        sys.exit(f"{path}: no 'BEGIN pinned images' ... 'END pinned images' block")
    indent = match.group("indent")
    first = match.group(0).splitlines()[0]
    body = [first, *make_block(indent, registry, tag, digests), f"{indent}# END pinned images"]
    path.write_text(text[: match.start()] + "\n".join(body) + "\n" + text[match.end() :])
    print(f"{path}: {len(digests)} images pinned at {tag}")


def read_digests(folder: Path) -> dict[str, str]:
    digests: dict[str, str] = {}
    for name in IMAGES:
        file = folder / name
        if not file.is_file():
            sys.exit(f"no digest for {name}: {file} is missing")
        value = file.read_text().strip()
        if not DIGEST.match(value):
            sys.exit(f"{file}: {value!r} is not a sha256 digest")
        digests[name] = value
    return digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", required=True, help="e.g. ghcr.io/<owner>")
    parser.add_argument("--tag", required=True, help="the release tag, e.g. v0.2.0")
    parser.add_argument("--digests", required=True, type=Path, help="one file per image")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to change")
    args = parser.parse_args()
    if not re.match(r"^[a-z0-9.:-]+(/[a-z0-9._-]+)*$", args.registry):
        sys.exit(f"--registry {args.registry!r}: lower-case registry/namespace expected")
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", args.tag):
        sys.exit(f"--tag {args.tag!r} is not a valid image tag")
    digests = read_digests(args.digests)
    rewrite(args.root / VALUES, chart_block, args.registry, args.tag, digests)
    rewrite(args.root / COMPOSE, compose_block, args.registry, args.tag, digests)


if __name__ == "__main__":
    main()
