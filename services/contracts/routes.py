"""The public API: which paths and methods reach which service. Defined once.

Everything not listed here is internal (workflow's calls to package, drone scheduler and
delivery) and is never routed from outside. Each path is also served under the version
prefix, as the original's ingress did, so two releases can run side by side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

VERSION_PREFIX = "/v0.1.0"
# One path segment: the ids this system issues and accepts ("." and ".." are path steps).
ID = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9._~-]{1,128}"
# The console's static files: a flat folder of lower-case names (services/delivery/web).
ASSET = r"[a-z0-9-]{1,64}\.(?:js|css|svg)"


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    pattern: str  # a regular expression over the whole path, without the version prefix
    service: str

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and re.fullmatch(self.pattern, path) is not None


ROUTES: tuple[Route, ...] = (
    Route(("POST",), r"/api/deliveryrequests", "ingestion"),
    Route(("PATCH", "DELETE"), rf"/api/deliveryrequests/{ID}", "ingestion"),
    # "summary" is the delivery service's internal report, not a delivery id.
    Route(("GET",), rf"/api/deliveries/(?!summary$){ID}", "delivery"),
    Route(("GET",), rf"/api/deliveries/{ID}/status", "delivery"),
    Route(("POST",), rf"/api/deliveries/{ID}/notifymerequests", "delivery"),
    # The operations console and the tracking page (docs/console.md): their pages, and the
    # read-only views each service gives of its own data.
    Route(("GET",), r"/console", "delivery"),
    Route(("GET",), rf"/console/{ASSET}", "delivery"),
    Route(("GET",), rf"/track/{ID}", "delivery"),
    Route(("GET",), r"/api/console/deliveries", "delivery"),
    Route(("GET",), r"/api/console/fleet", "dronescheduler"),
    Route(("GET",), r"/api/console/pipeline", "workflow"),
)

PUBLIC_SERVICES = tuple(sorted({r.service for r in ROUTES}))


def strip_version(path: str) -> str:
    """The path as the service sees it: the version prefix is the gateway's business."""
    if path.startswith(VERSION_PREFIX + "/"):
        return path[len(VERSION_PREFIX) :]
    return path


def route_for(method: str, path: str) -> Route | None:
    """The route serving this request, or None (unknown path, or a method not routed)."""
    path = strip_version(path)
    for route in ROUTES:
        if route.matches(method, path):
            return route
    return None


def methods_for(path: str) -> list[str]:
    """The methods routed on this path: none means 404, some (but not this one) 405."""
    path = strip_version(path)
    return sorted({m for r in ROUTES if re.fullmatch(r.pattern, path) for m in r.methods})


def path_is_public(path: str) -> bool:
    return bool(methods_for(path))


def routed_to(service: str) -> Callable[[str, str], bool]:
    """Whether a request (method, path) is one the entry point routes to `service`."""

    def is_public(method: str, path: str) -> bool:
        route = route_for(method, path)
        return route is not None and route.service == service

    return is_public


def as_json() -> str:
    """The table for other tools (NGINX config generation, chart tests)."""
    return json.dumps(
        {
            "versionPrefix": VERSION_PREFIX,
            "routes": [
                {"methods": list(r.methods), "pattern": r.pattern, "service": r.service}
                for r in ROUTES
            ],
        },
        indent=2,
    )


if __name__ == "__main__":
    print(as_json())
