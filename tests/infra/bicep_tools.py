"""Run inside build/tools/infra/venv (scripts/check-infra.sh makes it), not the project's:

    python tests/infra/bicep_tools.py parse FILE.bicep...      -> {path: pycep JSON}
    python tests/infra/bicep_tools.py validate SCHEMA.json INSTANCE.json  -> errors, exit 1

pycep-parser and jsonschema are tools of the checks, not dependencies of the project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def parse(paths: list[str]) -> dict[str, Any]:
    from pycep import BicepParser

    parser = BicepParser(cache=False)
    return {p: parser.parse(file_path=Path(p)) for p in paths}


def validate(schema_path: str, instance_path: str) -> list[str]:
    import jsonschema

    schema = json.loads(Path(schema_path).read_text())
    instance = json.loads(Path(instance_path).read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "parse":
        json.dump(parse(args), sys.stdout, default=str)
    elif command == "validate":
        errors = validate(args[0], args[1])
        print("\n".join(errors))
        sys.exit(1 if errors else 0)
    else:
        sys.exit(f"unknown command {command!r}")
