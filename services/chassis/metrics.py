"""Prometheus metrics on /metrics: the golden signals of every service, by route.

One registry per process (prometheus_client's default; a service is one process). Routes
are labelled by their template (`/api/deliveries/{deliveryId}`), never the raw path: ids
in labels would make a new time series per delivery. Probes and scrapes are not counted.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# `_created` series double the output and no dashboard here reads them.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

UNMATCHED = "unmatched"  # 404s and 405s: one label value, whatever the path
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests served, by route template, method and status",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to serve an HTTP request, by route template and method",
    ["route", "method"],
)
HTTP_IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being served now")
# Counted in a plain int, read when scraped: the gauge's own inc() and dec() take its lock
# twice a request. One event loop serves every request of a process, so the int suffices.
_in_flight = 0
HTTP_IN_FLIGHT.set_function(lambda: _in_flight)
# "downstream", not "service": the Prometheus Operator puts a `service` target label on
# every series it scrapes, which would rename ours to `exported_service`.
DOWNSTREAM_RETRIES = Counter(
    "downstream_retries_total",
    "Calls to another service retried after a transient failure, by service called",
    ["downstream"],
)
BREAKER_STATE = Gauge(
    "breaker_state",
    "Circuit breaker per downstream service: 0 closed, 1 half-open, 2 open",
    ["downstream"],
)


# Datastore work (chassis/documents/metered.py): round trips, and the documents they touch
# (what Cosmos DB bills per document, batched or not). Queries count the documents returned.
# Tallied in plain ints and read when scraped, as _in_flight: a Counter's inc() takes its
# lock, twice per store call, and a booking makes several.
_store_tallies: dict[tuple[str, str], list[int]] = {}


def store_tally(collection: str, operation: str) -> list[int]:
    """[calls, documents] of one collection's operation, to add to; shared per label set."""
    return _store_tallies.setdefault((collection, operation), [0, 0])


class _StoreCounts:
    """store_calls_total and store_documents_total, from the tallies, on each scrape."""

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "store_calls",
            "Calls to the service's document store, by collection and operation",
            labels=["collection", "operation"],
        )
        documents = CounterMetricFamily(
            "store_documents",
            "Documents read, written, deleted or returned by queries, by collection and operation",
            labels=["collection", "operation"],
        )
        for labels, (n, docs) in list(_store_tallies.items()):
            calls.add_metric(labels, n)
            documents.add_metric(labels, docs)
        yield calls
        yield documents


REGISTRY.register(_StoreCounts())

# The fault injection switches (chassis/faults), 0 when off: a dashboard shows at once
# that the errors it plots were asked for.
FAULT_ERROR_RATE = Gauge(
    "injected_fault_error_rate", "Share of requests answered 503 by injected faults"
)
FAULT_LATENCY = Gauge(
    "injected_fault_latency_seconds", "Latency injected before each request, in seconds"
)


class BreakerState(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


def set_breaker_state(downstream: str, state: BreakerState) -> None:
    BREAKER_STATE.labels(downstream).set(state)


def _unmeasured(path: str) -> bool:
    return path in ("/metrics", "/healthz") or path.startswith("/health/")


class HttpMetrics:
    """ASGI middleware: request count, latency and in-flight requests, by route template.

    `route_of(scope)` is asked after the app ran, when the router has put the matched
    route in the scope.
    """

    def __init__(self, app: ASGIApp, route_of: Callable[[Scope], str]) -> None:
        self.app = app
        self._route_of = route_of
        # prometheus_client's labels() takes a lock and validates on every call; the label
        # sets are few (routes x methods x statuses), so their series are kept here.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _unmeasured(scope["path"]):
            await self.app(scope, receive, send)
            return
        global _in_flight
        status = 500  # what the server answers if the app raises before responding

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        _in_flight += 1
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            _in_flight -= 1
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            key = (self._route_of(scope), method, status)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    HTTP_REQUESTS.labels(key[0], method, str(status)),
                    HTTP_DURATION.labels(key[0], method),
                )
            series[0].inc()
            series[1].observe(elapsed)


def fastapi_route(scope: Scope) -> str:
    """The template of the route FastAPI matched (FastAPI puts it in the scope)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
