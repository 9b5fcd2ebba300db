"""Traces: one trace per delivery, across HTTP and the queue, exported by configuration.

Exporters, chosen by the environment when the process starts (`configure_telemetry`):
APPLICATIONINSIGHTS_CONNECTION_STRING -> Azure Monitor; else OTEL_EXPORTER_OTLP_ENDPOINT
(or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) -> OTLP over HTTP/protobuf; else nothing is exported.
W3C trace context is propagated in every case, and log lines carry the trace id.

Across the queue the consumer's span is a CHILD of the producer's span, not a linked root:
ingestion injects `traceparent` into the message's application properties, and workflow
starts its CONSUMER span with that context as parent. So one client request is one trace
(one Application Insights operation id), from the entry point through workflow's calls to
package, drone scheduler and delivery. Every delivery attempt of a message (a retry, a
redelivery after a crash) is another consumer span under the same producer span, so the
trace shows them all; the price is that a message retried for minutes makes a trace that
lasts minutes. Span links would suit batches (one span for many messages); workflow
processes each message on its own, so it does not need them. (On Service Bus, with Azure
SDK tracing on, the SDK puts its own message span between the two: still one trace.)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI
from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

AZURE_MONITOR = "azure-monitor"
OTLP = "otlp"
NO_EXPORT = "none"

# Probes and scrapes would drown the traces that matter.
_UNTRACED_PATH = r"/(health/(live|ready)|healthz|metrics)"
UNTRACED_URLS = rf"://[^/]+{_UNTRACED_PATH}$"
# The ASGI "receive"/"send" child spans say nothing an operator needs and cost a span each.
_NO_ASGI_EVENT_SPANS: list[Any] = ["receive", "send"]

_configured: str | None = None
# A proxy until a provider is set; named after the application once one is.
_tracer = trace.get_tracer(__name__)
# False once configure_telemetry found nothing to record spans for (see client_span).
_records_spans = True


def choose_exporter(environ: Mapping[str, str]) -> str:
    """Azure Monitor if a connection string is set, else OTLP if an endpoint is, else none.

    An empty value counts as unset, so a deployment can switch an inherited one off.
    """
    if environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip():
        return AZURE_MONITOR
    if any(
        environ.get(name, "").strip()
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return OTLP
    return NO_EXPORT


def configure_telemetry(
    service: str, *, namespace: str, live_metrics: bool = True, offline_storage: bool = True
) -> str:
    """Set the process's tracer provider and propagator; return the exporter chosen.

    Called once per process, before serving. Apps instrumented earlier pick the provider
    up then (OpenTelemetry hands out proxies until a provider is set).
    """
    global _configured, _tracer, _records_spans
    if _configured is not None:
        return _configured
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    resource = Resource.create({"service.name": service, "service.namespace": namespace})
    exporter = choose_exporter(os.environ)
    if exporter == AZURE_MONITOR:
        _configure_azure_monitor(
            os.environ["APPLICATIONINSIGHTS_CONNECTION_STRING"].strip(),
            resource,
            live_metrics,
            offline_storage,
        )
    elif exporter == OTLP:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _trace_azure_sdks()
    else:
        trace.set_tracer_provider(provider_without_export(resource))
    # Taken once the provider is set: the provider's own tracer, not a proxy to it that
    # looks the provider up again on every span.
    _tracer = trace.get_tracer(namespace)
    _records_spans = records_spans(os.environ)
    _configured = exporter
    return exporter


def provider_without_export(resource: Resource) -> TracerProvider:
    """Nothing to export to: spans that start here are not recorded (cheap), but they still
    get ids, so log lines correlate and `traceparent` goes on downstream. A caller that
    sampled its trace is still honoured (ParentBased), and OTEL_TRACES_SAMPLER still rules."""
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(ALWAYS_OFF)
    return TracerProvider(resource=resource, sampler=sampler)


def _configure_azure_monitor(
    connection_string: str, resource: Resource, live_metrics: bool, offline_storage: bool
) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    # The distro would instrument FastAPI and httpx globally; the chassis already does, per
    # app and per client, so turn those off here or every span would be made twice. The
    # Azure SDKs (Cosmos DB, Service Bus) stay instrumented: they are dependencies too.
    off = {"enabled": False}
    configure_azure_monitor(
        connection_string=connection_string,
        resource=resource,
        enable_live_metrics=live_metrics,
        disable_offline_storage=not offline_storage,
        instrumentation_options={
            name: off
            for name in (
                "fastapi",
                "httpx",
                "httpx2",
                "requests",
                "urllib",
                "urllib3",
                "django",
                "flask",
                "psycopg2",
            )
        },
    )


def _trace_azure_sdks() -> None:
    """Cosmos DB and Service Bus calls as spans, as the Azure Monitor distro does."""
    try:
        from azure.core.settings import settings
        from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan

        settings.tracing_implementation = OpenTelemetrySpan
    except ImportError:  # pragma: no cover - azure-core-tracing-opentelemetry is locked
        log.warning("Azure SDK calls will not be traced: azure-core-tracing-opentelemetry missing")


def shutdown_telemetry() -> None:
    """Send the spans still buffered when the server stops (the last requests' spans)."""
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(5_000)


# ---- HTTP ---------------------------------------------------------------------------


def records_spans(environ: Mapping[str, str]) -> bool:
    """Whether this process's spans can be recorded: with an exporter, or with a sampler
    chosen by OTEL_TRACES_SAMPLER. Without either no span is ever recorded, unless a caller
    sampled its trace, and then it goes nowhere."""
    return choose_exporter(environ) != NO_EXPORT or bool(environ.get("OTEL_TRACES_SAMPLER"))


def instrument_app(app: FastAPI) -> None:
    """A SERVER span for every route (named by its template), none for probes and scrapes.
    With nothing to record them, only the trace context (see TraceContextOnly)."""
    if not records_spans(os.environ):
        app.add_middleware(TraceContextOnly)
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=UNTRACED_URLS, exclude_spans=_NO_ASGI_EVENT_SPANS
    )


def instrument_starlette(app: Starlette, span_details: Any) -> None:
    """The same for a plain Starlette app; `span_details(scope)` gives (name, attributes)."""
    if not records_spans(os.environ):
        app.add_middleware(TraceContextOnly)
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=UNTRACED_URLS,
        default_span_details=span_details,
        exclude_spans=_NO_ASGI_EVENT_SPANS,
    )


_CONTEXT_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
_UNTRACED = re.compile(_UNTRACED_PATH)


class TraceContextOnly:
    """ASGI middleware for a process that records no spans: each request still runs in a
    span context of its own, the caller's trace continued (or a new one), so log lines
    carry its ids and calls made meanwhile pass `traceparent` on; but none of the span
    attributes, timings and response wrapping the full instrumentation costs per request,
    for a span that would not be recorded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _UNTRACED.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _CONTEXT_HEADERS
        }
        parent = propagate.extract(carrier) if carrier else None
        span = _tracer.start_span(scope["method"], context=parent, kind=SpanKind.SERVER)
        token = context_api.attach(trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, send)
        finally:
            context_api.detach(token)
            span.end()


@contextmanager
def client_span(
    peer: str, method: str, url: str, headers: MutableMapping[str, str]
) -> Iterator[Span]:
    """A CLIENT span for one attempt of a call to `peer`, its context injected into the
    request's `headers` (so the service's SERVER span is its child).

    In a process that records no spans, none is made: the caller's context goes on as it
    is (same trace, so log lines still correlate), without the ids, attributes and context
    switch of a span that would never be seen."""
    if not _records_spans:
        propagate.inject(headers)
        yield trace.get_current_span()
        return
    # No server.address: Azure Monitor would name the dependency's target by it (a pod's
    # address) instead of by peer.service (the service).
    with _tracer.start_as_current_span(
        method,
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url, "peer.service": peer},
    ) as span:
        propagate.inject(headers)
        yield span


def client_span_status(span: Span, status_code: int) -> None:
    """A 5xx answer is the call failing (a 4xx is the caller's mistake, not the call's)."""
    if span.is_recording():
        span.set_attribute("http.response.status_code", status_code)
        if status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))


def route_span_details(method: str, route: str) -> tuple[str, dict[str, str]]:
    return f"{method} {route}", {"http.route": route}


# ---- The queue ------------------------------------------------------------------------


def inject_context(properties: MutableMapping[str, str]) -> None:
    """Write the current trace context (`traceparent`, `tracestate`) into a message's
    application properties; every queue adapter carries them."""
    propagate.inject(properties)


def extract_context(properties: Mapping[str, str]) -> Context:
    """The trace context a message was sent in (an empty context if it carries none)."""
    return propagate.extract(properties)


@dataclass(frozen=True)
class MessagingTarget:
    """What the messaging semantic conventions call the system and the destination."""

    system: str
    destination: str

    @classmethod
    def from_queue_url(cls, url: str) -> MessagingTarget:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.scheme == "servicebus":
            return cls("servicebus", parts.path.strip("/"))
        system = "rabbitmq" if parts.scheme in ("amqp", "amqps") else parts.scheme
        return cls(system, query.get("queue", [""])[0])


def _messaging_attributes(
    target: MessagingTarget, operation: str, message_id: str, body_size: int
) -> dict[str, Any]:
    return {
        "messaging.system": target.system,
        "messaging.destination.name": target.destination,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.operation": operation,  # the pre-1.26 name, still read by some backends
        "messaging.message.id": message_id,
        "messaging.message.body.size": body_size,
    }


@contextmanager
def producer_span(
    target: MessagingTarget,
    *,
    message_id: str,
    properties: MutableMapping[str, str],
    body_size: int,
    attributes: Mapping[str, str] | None = None,
) -> Iterator[Span]:
    """A PRODUCER span around a send, its context injected into `properties` (none made
    where no span is recorded, as for client_span)."""
    if not _records_spans:
        inject_context(properties)
        yield trace.get_current_span()
        return
    with _tracer.start_as_current_span(
        f"send {target.destination}",
        kind=SpanKind.PRODUCER,
        attributes={
            **_messaging_attributes(target, "send", message_id, body_size),
            **(attributes or {}),
        },
    ) as span:
        inject_context(properties)
        yield span


@contextmanager
def consumer_span(
    target: MessagingTarget,
    *,
    message_id: str,
    properties: Mapping[str, str],
    delivery_count: int,
    body_size: int,
) -> Iterator[Span]:
    """A CONSUMER span for processing one message, the child of its producer's span."""
    attributes = _messaging_attributes(target, "process", message_id, body_size)
    attributes["messaging.message.delivery_count"] = delivery_count
    with _tracer.start_as_current_span(
        f"process {target.destination}",
        context=extract_context(properties),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        yield span


def mark_failed(span: Span, description: str) -> None:
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, description[:300]))


def annotate(**attributes: str) -> None:
    """Add attributes to the current span (a no-op when it is not recorded)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)
