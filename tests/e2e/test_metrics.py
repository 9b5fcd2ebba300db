"""/metrics on the running services: the counters move with the traffic, labelled by route
template (never by a raw id), and workflow's pipeline metrics follow the messages."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import GUIDE_REQUEST, System, eventually


def scrape(client: httpx.Client) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    return r.text, samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_and_the_pipeline_by_message(
    system: System,
) -> None:
    stack = system.need_stack()
    services = ("gateway", "ingestion", "workflow", "delivery")
    clients = {s: httpx.Client(base_url=stack.url(s), timeout=10) for s in services}
    try:
        before = {s: scrape(c)[1] for s, c in clients.items()}
        with system.client() as client:
            r = client.post("/api/deliveryrequests", json=GUIDE_REQUEST)
            assert r.status_code == 202, r.text
            delivery_id = r.json()["deliveryId"]
            assert client.post("/api/deliveryrequests", json={}).status_code == 400
            assert client.get("/no/such/api").status_code == 404
            eventually(
                lambda: client.get(f"/api/deliveries/{delivery_id}").status_code == 200,
                what="the delivery scheduled",
            )

        def grew(service: str, name: str, by: float = 1, **labels: str) -> bool:
            now = scrape(clients[service])[1]
            return value(now, name, **labels) - value(before[service], name, **labels) >= by

        post = {"route": "/api/deliveryrequests", "method": "POST"}
        for service in ("gateway", "ingestion"):
            assert grew(service, "http_requests_total", **post, status="202")
            assert grew(service, "http_requests_total", **post, status="400")  # errors
            assert grew(service, "http_request_duration_seconds_count", **post)
        assert grew("gateway", "http_requests_total", route="unmatched", method="GET", status="404")
        assert grew(
            "gateway",
            "http_requests_total",
            route="/api/deliveries/{id}",
            method="GET",
            status="200",
        )
        # Workflow records deliveries through the batch route (services/workflow/stages.py).
        assert grew(
            "delivery",
            "http_requests_total",
            route="/api/deliveries/batch",
            method="POST",
            status="200",
        )
        assert grew("ingestion", "enqueue_seconds_count", operation="delivery", outcome="ok")

        # Workflow settles the message just after delivery has it: poll, do not sleep.
        eventually(
            lambda: grew(
                "workflow", "messages_processed_total", operation="delivery", outcome="completed"
            ),
            what="the message counted as completed",
        )
        assert grew("workflow", "message_processing_seconds_count", operation="delivery")
        assert grew("workflow", "queue_lag_seconds_count")
        now = scrape(clients["workflow"])[1]
        for downstream in ("package", "dronescheduler", "delivery"):
            assert value(now, "breaker_state", downstream=downstream) == 0  # closed
            assert ("downstream_retries_total", frozenset({("downstream", downstream)})) in now

        # Ids never become label values: one series per route, not one per delivery.
        for service, client in clients.items():
            assert delivery_id not in scrape(client)[0], f"{service} put an id in a label"
        assert "/metrics" not in clients["ingestion"].get("/openapi.json").json()["paths"]
    finally:
        for c in clients.values():
            c.close()
