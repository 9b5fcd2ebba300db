"""The public route table: what reaches which service from outside, and what never does."""

from __future__ import annotations

import json

import pytest

from contracts.routes import (
    PUBLIC_SERVICES,
    ROUTES,
    VERSION_PREFIX,
    as_json,
    methods_for,
    path_is_public,
    route_for,
    strip_version,
)

DELIVERY_ID = "3f1d2c9e-8a5b-4e0f-9c7d-1a2b3c4d5e6f"

PUBLIC = [
    ("POST", "/api/deliveryrequests", "ingestion"),
    ("PATCH", f"/api/deliveryrequests/{DELIVERY_ID}", "ingestion"),
    ("DELETE", f"/api/deliveryrequests/{DELIVERY_ID}", "ingestion"),
    ("GET", f"/api/deliveries/{DELIVERY_ID}", "delivery"),
    ("GET", f"/api/deliveries/{DELIVERY_ID}/status", "delivery"),
    ("POST", f"/api/deliveries/{DELIVERY_ID}/notifymerequests", "delivery"),
    # The console (docs/console.md): its files, and each service's read-only view.
    ("GET", "/console", "delivery"),
    ("GET", "/console/console.js", "delivery"),
    ("GET", f"/track/{DELIVERY_ID}", "delivery"),
    ("GET", "/api/console/deliveries", "delivery"),
    ("GET", "/api/console/fleet", "dronescheduler"),
    ("GET", "/api/console/pipeline", "workflow"),
]

# Workflow's calls to the other services, and every service's own operational endpoints.
INTERNAL = [
    ("PUT", f"/api/deliveries/{DELIVERY_ID}"),
    ("PUT", f"/api/deliveries/{DELIVERY_ID}/failure"),
    ("GET", f"/api/deliveries/{DELIVERY_ID}/failure"),
    ("PATCH", f"/api/deliveries/{DELIVERY_ID}"),
    ("DELETE", f"/api/deliveries/{DELIVERY_ID}"),
    ("GET", "/api/deliveries/summary"),
    ("POST", f"/api/deliveries/{DELIVERY_ID}/confirmations"),
    ("PUT", "/api/packages/mypackage"),
    ("GET", "/api/packages/mypackage"),
    ("PATCH", "/api/packages/mypackage"),
    ("GET", "/api/packages/summary/myowner"),
    ("PUT", f"/api/dronedeliveries/{DELIVERY_ID}"),
    ("GET", f"/api/dronedeliveries/{DELIVERY_ID}"),
    ("DELETE", f"/api/dronedeliveries/{DELIVERY_ID}"),
    ("GET", "/api/dronedeliveries/utilization"),
    ("GET", "/api/drones"),
    ("GET", "/api/drones/drone-001"),
    ("GET", "/api/workflow/progress"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    # Nothing but the console's own flat files, and no other method on its views.
    ("GET", "/console/../openapi.json"),
    ("GET", "/console/sub/console.js"),
    ("GET", "/console/Console.js"),
    ("GET", "/console/console.py"),
    ("GET", "/console/"),
    ("POST", "/api/console/fleet"),
    ("DELETE", "/api/console/deliveries"),
    ("GET", "/api/console/drones"),
    ("GET", "/track/.."),
    ("GET", "/track/"),
]


@pytest.mark.parametrize(("method", "path", "service"), PUBLIC)
def test_every_public_route_reaches_its_service(method: str, path: str, service: str) -> None:
    route = route_for(method, path)
    assert route is not None
    assert route.service == service
    assert path_is_public(path)


@pytest.mark.parametrize(("method", "path", "service"), PUBLIC)
def test_every_public_route_is_also_served_under_the_version(
    method: str, path: str, service: str
) -> None:
    versioned = VERSION_PREFIX + path
    route = route_for(method, versioned)
    assert route is not None
    assert route.service == service
    assert route == route_for(method, path)
    assert path_is_public(versioned)


@pytest.mark.parametrize(("method", "path"), INTERNAL)
def test_internal_apis_are_not_routed(method: str, path: str) -> None:
    assert route_for(method, path) is None
    assert route_for(method, VERSION_PREFIX + path) is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/deliveries/summary",
        f"/api/deliveries/{DELIVERY_ID}/confirmations",
        f"/api/deliveries/{DELIVERY_ID}/failure",
        "/api/packages/mypackage",
        f"/api/dronedeliveries/{DELIVERY_ID}",
        "/api/drones",
        "/health/ready",
    ],
)
def test_internal_only_paths_are_unknown_from_outside(path: str) -> None:
    # Not even a 405: from outside they do not exist.
    assert not path_is_public(path)
    assert not path_is_public(VERSION_PREFIX + path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/deliveryrequests"),
        ("PUT", "/api/deliveryrequests"),
        ("GET", f"/api/deliveryrequests/{DELIVERY_ID}"),
        ("POST", f"/api/deliveryrequests/{DELIVERY_ID}"),
        ("POST", f"/api/deliveries/{DELIVERY_ID}"),
        ("PUT", f"/api/deliveries/{DELIVERY_ID}"),
        ("DELETE", f"/api/deliveries/{DELIVERY_ID}/status"),
        ("GET", f"/api/deliveries/{DELIVERY_ID}/notifymerequests"),
    ],
)
def test_a_wrong_method_on_a_public_path_is_not_routed_but_the_path_is_known(
    method: str, path: str
) -> None:
    assert route_for(method, path) is None
    assert path_is_public(path)
    assert path_is_public(VERSION_PREFIX + path)


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/deliveryrequests", ["POST"]),
        (f"/api/deliveryrequests/{DELIVERY_ID}", ["DELETE", "PATCH"]),
        (f"/api/deliveries/{DELIVERY_ID}", ["GET"]),
        (f"/api/deliveries/{DELIVERY_ID}/status", ["GET"]),
        (f"{VERSION_PREFIX}/api/deliveries/{DELIVERY_ID}/notifymerequests", ["POST"]),
        ("/api/deliveries/summary", []),
        ("/api/packages/mypackage", []),
    ],
)
def test_the_methods_of_a_path_are_what_a_405_offers(path: str, methods: list[str]) -> None:
    assert methods_for(path) == methods


@pytest.mark.parametrize("method", ["get", "Get", "post"])
def test_methods_are_matched_as_http_spells_them(method: str) -> None:
    assert route_for(method, "/api/deliveryrequests") is None
    assert route_for(method, f"/api/deliveries/{DELIVERY_ID}") is None


@pytest.mark.parametrize(
    "delivery_id",
    [
        "a/b",
        "a/b/c",
        "x" * 129,
        "",
        "with space",
        "percent%2Fencoded",
        "semi;colon",
        "qu?ery",
        "ünicode",
    ],
)
def test_ids_that_cannot_be_one_path_segment_do_not_match(delivery_id: str) -> None:
    for method, template in [
        ("GET", "/api/deliveries/{}"),
        ("GET", "/api/deliveries/{}/status"),
        ("POST", "/api/deliveries/{}/notifymerequests"),
        ("PATCH", "/api/deliveryrequests/{}"),
        ("DELETE", "/api/deliveryrequests/{}"),
    ]:
        assert route_for(method, template.format(delivery_id)) is None


def test_the_longest_allowed_id_matches() -> None:
    assert route_for("GET", "/api/deliveries/" + "x" * 128) is not None
    assert route_for("GET", "/api/deliveries/" + "x" * 129) is None


def test_ids_may_use_every_unreserved_character() -> None:
    assert route_for("GET", "/api/deliveries/Az09._~-/status") is not None


@pytest.mark.parametrize("dots", [".", ".."])
def test_dot_segments_are_not_ids(dots: str) -> None:
    assert route_for("GET", f"/api/deliveries/{dots}") is None
    assert route_for("DELETE", f"/api/deliveryrequests/{dots}") is None


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api",
        "/api/",
        "/api/deliveryrequests/",
        "/api/deliveries",
        "/api/deliveries/",
        "/API/deliveryrequests",
        "/api/deliveryrequests/x/extra",
        "/v0.1.0",
        "/v0.1.0/",
        "/v0.2.0/api/deliveryrequests",
        "/v0.1.0/v0.1.0/api/deliveryrequests",
        "/v0.1.0api/deliveryrequests",
        "api/deliveryrequests",
    ],
)
def test_near_misses_are_not_public(path: str) -> None:
    assert not path_is_public(path)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        assert route_for(method, path) is None


def test_summary_is_not_a_delivery_id_but_a_longer_id_starting_with_it_is() -> None:
    assert route_for("GET", "/api/deliveries/summary") is None
    assert route_for("GET", "/api/deliveries/summary2") is not None
    assert route_for("GET", "/api/deliveries/my-summary") is not None


def test_strip_version_removes_only_a_whole_leading_prefix() -> None:
    assert strip_version("/v0.1.0/api/deliveryrequests") == "/api/deliveryrequests"
    assert strip_version("/api/deliveryrequests") == "/api/deliveryrequests"
    assert strip_version("/v0.1.0") == "/v0.1.0"
    assert strip_version("/v0.1.0x/api") == "/v0.1.0x/api"
    assert strip_version("/api/v0.1.0/x") == "/api/v0.1.0/x"


def test_the_public_services_are_the_api_s_and_the_console_s() -> None:
    # Drone scheduler and workflow only for the console's read-only views of their data.
    assert PUBLIC_SERVICES == ("delivery", "dronescheduler", "ingestion", "workflow")
    assert {r.service for r in ROUTES if not r.pattern.startswith("/api/console/")} == {
        "delivery",
        "ingestion",
    }


def test_the_exported_table_is_the_route_table() -> None:
    table = json.loads(as_json())
    assert table["versionPrefix"] == VERSION_PREFIX
    assert [(tuple(r["methods"]), r["pattern"], r["service"]) for r in table["routes"]] == [
        (r.methods, r.pattern, r.service) for r in ROUTES
    ]
