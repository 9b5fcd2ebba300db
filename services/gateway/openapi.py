"""The public API's OpenAPI document: the services' own documents, cut to the route table.

Each service documents everything it serves, internal operations included; a client of the
entry point should see only what the entry point routes.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from contracts.routes import route_for

METHODS = ("get", "put", "post", "patch", "delete")
SCHEMA_REF = "#/components/schemas/"


def _sample(template: str) -> str:
    """A concrete path for a path template, to ask the route table about."""
    return re.sub(r"\{[^}]+\}", "sample-id", template)


def _referenced(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The schemas the public paths use, directly or through other schemas: a service's
    internal bodies stay out of the public document."""
    found: set[str] = set()
    pending: list[Any] = [paths]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
                name = ref[len(SCHEMA_REF) :]
                if name not in found and name in schemas:
                    found.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return {name: schemas[name] for name in sorted(found)}


def public_openapi(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge the services' documents, keeping the operations routed to that same service."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for service, document in sorted(documents.items()):
        for template, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                if method not in METHODS:
                    continue
                route = route_for(method.upper(), _sample(template))
                if route is None or route.service != service:
                    continue
                paths.setdefault(template, {})[method] = copy.deepcopy(operation)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"schema {name!r} differs between services; rename one")
            schemas[name] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Drone Delivery",
            "version": "0.1.0",
            "description": "The public API. Every path is also served under /v0.1.0.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": _referenced(paths, schemas)},
    }
