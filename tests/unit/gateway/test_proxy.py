"""The gateway's HTTP metrics (gateway/proxy.py): requests labelled by the route table's
templates, never by the ids in their paths."""

from __future__ import annotations

import re

import pytest

from contracts.routes import ROUTES
from gateway.proxy import _TEMPLATES, route_label


@pytest.mark.parametrize(
    ("method", "path", "label"),
    [
        ("POST", "/api/deliveryrequests", "/api/deliveryrequests"),
        ("POST", "/v0.1.0/api/deliveryrequests", "/api/deliveryrequests"),
        ("PATCH", "/api/deliveryrequests/d-1", "/api/deliveryrequests/{id}"),
        ("GET", "/api/deliveries/d-1", "/api/deliveries/{id}"),
        ("GET", "/v0.1.0/api/deliveries/d-1/status", "/api/deliveries/{id}/status"),
        ("POST", "/api/deliveries/d-1/notifymerequests", "/api/deliveries/{id}/notifymerequests"),
        ("GET", "/api/deliveries/summary", "unmatched"),
        ("GET", "/api/packages/p-1", "unmatched"),
        ("GET", "/openapi.json", "/openapi.json"),
    ],
)
def test_the_gateway_labels_requests_by_its_route_table(method: str, path: str, label: str) -> None:
    assert route_label({"type": "http", "method": method, "path": path}) == label


def test_every_public_route_has_a_template_without_regular_expressions() -> None:
    for route in ROUTES:
        assert re.fullmatch(r"[/a-z{}]+", _TEMPLATES[route]), (route, _TEMPLATES[route])
