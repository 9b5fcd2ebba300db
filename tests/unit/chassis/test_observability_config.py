"""The observability files in the repository agree with the code: the Grafana dashboard
queries only metrics the services export (and charts all of ours), Prometheus scrapes the
five services, the collector passes traces to Jaeger, and the compose profile wires it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import chassis.metrics
import ingestion.metrics
import workflow.metrics

ROOT = Path(__file__).resolve().parents[3]
OBSERVABILITY = ROOT / "docker" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "drone-delivery.json"
COMPOSE = ROOT / "docker-compose.observability.yml"
SERVICES = ("ingestion", "workflow", "package", "dronescheduler", "delivery")
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
PROMQL_KEYWORDS |= {"and", "or", "unless", "offset", "inf", "nan"}


def _exported_names() -> set[str]:
    """Every series name this process's registry can export (ours and the process ones)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "gauge": ("",),
        "summary": ("_count", "_sum", ""),
    }
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def _our_families(*modules: ModuleType) -> set[str]:
    return {
        metric._name
        for module in modules
        for metric in vars(module).values()
        if isinstance(metric, MetricWrapperBase)
    }


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, ranges left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])[A-Za-z_:][\w:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group() in PROMQL_KEYWORDS:
            continue  # a function or an operator
        names.add(match.group())
    return names


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return panels


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (job) (rate(http_requests_total{job=~"$service"}[$__rate_interval]))',
            {"http_requests_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(queue_lag_seconds_bucket[5m])))",
            {"queue_lag_seconds_bucket"},
        ),
        ('a_total{status=~"5.."} / ignoring(status) b_total', {"a_total", "b_total"}),
        ("max by (downstream) (breaker_state) > bool 1", {"breaker_state"}),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_dashboard_query_uses_exported_metrics_and_every_metric_is_charted() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "drone-delivery"
    exported = _exported_names()
    charted: set[str] = set()
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= exported, (panel["title"], names - exported)
            charted |= names
    ours = _our_families(chassis.metrics, ingestion.metrics, workflow.metrics)
    assert {"http_requests", "enqueue_seconds", "queue_lag_seconds"} <= ours
    uncharted = {f for f in ours if not any(n.startswith(f) for n in charted)}
    assert not uncharted, f"metrics no panel shows: {uncharted}"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["service"]["definition"] == "label_values(http_requests_total, job)"


def test_prometheus_scrapes_the_five_services_on_their_port() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    for name, job in jobs.items():
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job["static_configs"] == [{"targets": [f"{name}:8080"]}]


def test_the_collector_receives_otlp_and_passes_traces_to_jaeger() -> None:
    config = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["exporters"] == ["otlp/jaeger"]
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"


def test_the_compose_profile_runs_the_tools_and_points_the_services_at_the_collector() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    images = {
        "otel-collector": "OTEL_COLLECTOR_IMAGE",
        "jaeger": "JAEGER_IMAGE",
        "prometheus": "PROMETHEUS_IMAGE",
        "grafana": "GRAFANA_IMAGE",
    }
    for name, variable in images.items():
        assert services[name]["profiles"] == ["observability"]
        assert re.fullmatch(rf"\$\{{{variable}:-[^}}]+\}}", services[name]["image"])
        for volume in services[name].get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
        for port in services[name].get("ports", []):
            assert port.startswith("127.0.0.1:")  # loopback only, like the gateway
    for name in SERVICES:
        endpoint = services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint == "http://otel-collector:4318"
        assert "profiles" not in services[name]  # the app itself is never profile-gated
    provider = yaml.safe_load(
        (OBSERVABILITY / "grafana/provisioning/dashboards/dashboards.yaml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load(
        (OBSERVABILITY / "grafana/provisioning/datasources/datasources.yaml").read_text()
    )
    assert {s["type"] for s in sources["datasources"]} == {"prometheus", "jaeger"}
