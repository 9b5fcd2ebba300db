"""Azure Monitor by configuration: with APPLICATIONINSIGHTS_CONNECTION_STRING set, each
service process exports to the connection string's ingestion endpoint, here a loopback
receiver that parses what Application Insights would store.

A client's `traceparent` becomes the operation id of every request and dependency of the
delivery, in every service, across the queue: one operation in Application Insights.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from launcher.stack import SERVICES, Stack
from tests.e2e.conftest import GUIDE_REQUEST, _footing, _free_base_port, eventually
from tests.e2e.receivers import AppInsightsReceiver

pytestmark = pytest.mark.skipif(
    os.environ.get("E2E_BASE_URL") is not None, reason="starts its own processes"
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def monitored(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, AppInsightsReceiver]]:
    tmp = tmp_path_factory.mktemp("azure-monitor")
    footing, cleanup = _footing(tmp)
    with AppInsightsReceiver() as receiver:
        env = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                f"IngestionEndpoint={receiver.url}/"
            ),
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            # Every span: the distro's default samples at most 5 spans/s, and when its rate
            # falls below 100% it decides a child span of a kept trace on its own (dropping,
            # e.g., workflow's third call when the calls come quickly).
            "OTEL_TRACES_SAMPLER": "microsoft.fixed_percentage",
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
            # Nothing may leave loopback: no offline files, no Live Metrics, and none of the
            # SDK's own calls home (statsbeat, its settings service, the Azure VM metadata).
            "AZURE_MONITOR_OFFLINE_STORAGE": "false",
            "AZURE_MONITOR_LIVE_METRICS": "false",
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
        }
        base = _free_base_port()
        stack = Stack(
            footing,
            gateway_port=base,
            base_port=base,
            log_dir=tmp / "logs",
            extra_env={service: dict(env) for service in SERVICES},
        )
        stack.up(within=90)
        try:
            yield stack, receiver
        finally:
            stack.down(grace=20)
            print(f"\nazure monitor logs in {tmp / 'logs'}")
            cleanup()


def _service(envelope: dict[str, Any]) -> str:
    # The cloud role is "<service.namespace>.<service.name>": drone-delivery.workflow.
    role: str = envelope["tags"].get("ai.cloud.role", "")
    return role.rsplit(".", 1)[-1]


def _of_operation(receiver: AppInsightsReceiver) -> list[dict[str, Any]]:
    return [
        e
        for e in receiver.snapshot()
        if e["tags"].get("ai.operation.id") == TRACE_ID
        and e["data"]["baseType"] in ("RequestData", "RemoteDependencyData")
    ]


def _all_arrived(receiver: AppInsightsReceiver) -> list[dict[str, Any]] | None:
    telemetry = _of_operation(receiver)
    requests = {_service(e) for e in telemetry if e["data"]["baseType"] == "RequestData"}
    dependencies = [e for e in telemetry if e["data"]["baseType"] == "RemoteDependencyData"]
    targets = {e["data"]["baseData"].get("target") for e in dependencies}
    if requests >= set(SERVICES) and {"package", "dronescheduler", "delivery"} <= targets:
        return telemetry
    return None


def test_requests_and_dependencies_arrive_under_the_clients_operation_id(
    monitored: tuple[Stack, AppInsightsReceiver],
) -> None:
    stack, receiver = monitored
    with httpx.Client(base_url=stack.url("gateway"), timeout=10) as client:
        r = client.post(
            "/api/deliveryrequests",
            json=GUIDE_REQUEST,
            headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"},
        )
    assert r.status_code == 202, r.text
    delivery_id = r.json()["deliveryId"]

    telemetry = eventually(
        lambda: _all_arrived(receiver), within=30, what="requests and dependencies of all six"
    )

    def one(base_type: str, service: str, **data: object) -> dict[str, Any]:
        found = [
            e
            for e in telemetry
            if e["data"]["baseType"] == base_type
            and _service(e) == service
            and all(e["data"]["baseData"].get(k) == v for k, v in data.items())
        ]
        assert len(found) == 1, f"{base_type} of {service} {data}: {found}"
        return found[0]

    def parent(envelope: dict[str, Any]) -> str:
        return str(envelope["tags"]["ai.operation.parentId"])

    def id_of(envelope: dict[str, Any]) -> str:
        return str(envelope["data"]["baseData"]["id"])

    gateway = one("RequestData", "gateway")
    assert parent(gateway) == CLIENT_SPAN_ID
    assert gateway["data"]["baseData"]["name"] == "POST /api/deliveryrequests"
    assert gateway["data"]["baseData"]["responseCode"] == "202"
    to_ingestion = one("RemoteDependencyData", "gateway", target="ingestion")
    assert parent(to_ingestion) == id_of(gateway)
    ingestion = one("RequestData", "ingestion")
    assert parent(ingestion) == id_of(to_ingestion)
    enqueue = one("RemoteDependencyData", "ingestion")
    assert parent(enqueue) == id_of(ingestion)
    assert enqueue["data"]["baseData"]["type"].startswith("Queue Message")
    workflow = one("RequestData", "workflow")
    assert parent(workflow) == id_of(enqueue)  # across the queue, the same operation
    for service in ("package", "dronescheduler", "delivery"):
        call = one("RemoteDependencyData", "workflow", target=service)
        assert parent(call) == id_of(workflow)
        served = one("RequestData", service)
        assert parent(served) == id_of(call)
        assert served["data"]["baseData"]["success"] is True
    # The request's delivery is named on the spans, so it can be searched for.
    assert enqueue["data"]["baseData"]["properties"]["delivery.id"] == delivery_id


def test_log_lines_arrive_as_traces_of_the_same_operation(
    monitored: tuple[Stack, AppInsightsReceiver],
) -> None:
    stack, receiver = monitored
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    with httpx.Client(base_url=stack.url("gateway"), timeout=10) as client:
        r = client.post(
            "/api/deliveryrequests",
            json=GUIDE_REQUEST,
            headers={"traceparent": f"00-{trace_id}-{CLIENT_SPAN_ID}-01"},
        )
    assert r.status_code == 202, r.text

    def accepted_line() -> list[dict[str, Any]]:
        return [
            e
            for e in receiver.snapshot()
            if e["data"]["baseType"] == "MessageData"
            and e["tags"].get("ai.operation.id") == trace_id
            and _service(e) == "ingestion"
        ]

    lines = eventually(accepted_line, within=30, what="ingestion's log line as MessageData")
    assert lines[0]["data"]["baseData"]["message"] == "delivery request accepted"
