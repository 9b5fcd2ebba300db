"""HTTP metrics of every service: by route template, errors by status, probes not counted;
and workflow's pipeline metrics as its consumer settles messages."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from fastapi import APIRouter, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from chassis.app import create_service_app
from chassis.queue import OutgoingMessage, QueueOptions, ReceivedMessage, connect_message_queue
from gateway.proxy import _TEMPLATES, route_label
from gateway.routes import ROUTES
from workflow.consumer import Consumer
from workflow.service import Complete, DeadLetter, Outcome, RetryLater

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


async def test_workflow_counts_outcomes_dead_letters_lag_and_processing_time(
    tmp_path: Path,
) -> None:
    queue = await connect_message_queue(
        f"sqlite:///{tmp_path}/q.db?queue=t", QueueOptions(lock_seconds=30, max_delivery_count=5)
    )
    outcomes: dict[str, Outcome] = {
        "ok": Complete(),
        "later": RetryLater("package unavailable", 60.0),
        "never": DeadLetter("Rejected", "package refused it"),
    }
    for message_id in (*outcomes, "bug"):
        await queue.send(OutgoingMessage(message_id, b"{}", {"operation": "cancel"}))
    done = asyncio.Event()
    seen: list[str] = []

    async def handler(message: ReceivedMessage) -> Outcome:
        seen.append(message.message_id)
        if len(seen) == 4:
            done.set()
        if message.message_id == "bug":
            raise RuntimeError("a bug")
        return outcomes[message.message_id]

    def counts() -> dict[str, float]:
        return {
            **{
                outcome: sample("messages_processed_total", operation="cancel", outcome=outcome)
                for outcome in ("completed", "retried", "dead_lettered")
            },
            "dead": sample("dead_letters_total", reason="Rejected"),
            "lag": sample("queue_lag_seconds_count"),
            "time": sample("message_processing_seconds_count", operation="cancel"),
        }

    before = counts()
    consumer = Consumer(queue, handler, concurrency=4, lock_seconds=30)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(done.wait(), 20)
    await consumer.stop(5)
    running.cancel()
    await queue.close()
    after = counts()
    assert {k: after[k] - before[k] for k in after} == {
        "completed": 1,
        "retried": 2,  # the handler's bug is retried too
        "dead_lettered": 1,
        "dead": 1,
        "lag": 4,
        "time": 4,
    }


def test_every_public_route_has_a_template_without_regular_expressions() -> None:
    for route in ROUTES:
        assert re.fullmatch(r"[/a-z{}]+", _TEMPLATES[route]), (route, _TEMPLATES[route])
