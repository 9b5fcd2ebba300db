"""HTTP metrics of every service (chassis/app.py): by route template, errors by status, probes
not counted."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from chassis.app import create_service_app

router = APIRouter(prefix="/api/widgets")


@router.get("/{widgetId}")
async def get_widget(widgetId: str) -> dict[str, str]:
    if widgetId == "broken":
        raise RuntimeError("a bug")
    if widgetId == "missing":
        raise HTTPException(404, "no such widget")
    return {"id": widgetId}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_are_counted_by_route_template_method_and_status() -> None:
    app = create_service_app(name="widgets", summary="test", routers=[router])
    route = {"route": "/api/widgets/{widgetId}", "method": "GET"}
    before = {
        status: sample("http_requests_total", **route, status=status)
        for status in ("200", "404", "500")
    }
    unmatched = sample("http_requests_total", route="unmatched", method="GET", status="404")
    latency = sample("http_request_duration_seconds_count", **route)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/widgets/w-123").status_code == 200
        assert client.get("/api/widgets/w-456").status_code == 200
        assert client.get("/api/widgets/missing").status_code == 404
        assert client.get("/api/widgets/broken").status_code == 500
        assert client.get("/nothing/here").status_code == 404
        for path in ("/health/ready", "/health/live", "/metrics"):
            assert client.get(path).status_code == 200
        text = client.get("/metrics").text
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]
    assert sample("http_requests_total", **route, status="200") == before["200"] + 2
    assert sample("http_requests_total", **route, status="404") == before["404"] + 1
    assert sample("http_requests_total", **route, status="500") == before["500"] + 1
    assert sample("http_request_duration_seconds_count", **route) == latency + 4
    assert (
        sample("http_requests_total", route="unmatched", method="GET", status="404")
        == unmatched + 1
    )
    assert "w-123" not in text  # ids never become label values
    assert 'route="/health' not in text and 'route="/metrics"' not in text
