"""Trace context across the queue, the exporter chosen by configuration, log correlation,
and client spans on every attempt of a service call."""

from __future__ import annotations

import contextvars
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from chassis import telemetry
from chassis.http import ServiceClient
from chassis.logs import JsonFormatter, bind_log_fields
from chassis.metrics import DOWNSTREAM_RETRIES
from chassis.queue import OutgoingMessage, QueueOptions, connect_message_queue
from chassis.telemetry import MessagingTarget, choose_exporter
from tests.loopback import LoopbackHandler, LoopbackServer, answer

TARGET = MessagingTarget("sqlite", "deliveryrequests")


@pytest.fixture(scope="module")
def recorded() -> Iterator[InMemorySpanExporter]:
    """Spans of this process, recorded in memory (the global provider is set once)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture
def spans(recorded: InMemorySpanExporter) -> InMemorySpanExporter:
    recorded.clear()
    return recorded


def _named(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in spans.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in spans.get_finished_spans()]
    return found[0]


@pytest.mark.parametrize(
    ("env", "chosen"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}, "azure-monitor"),
        (
            {
                "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            },
            "azure-monitor",
        ),
        (
            {
                "APPLICATIONINSIGHTS_CONNECTION_STRING": " ",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            },
            "otlp",
        ),
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": "", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}, "none"),
    ],
)
def test_the_exporter_is_chosen_by_the_environment(env: dict[str, str], chosen: str) -> None:
    assert choose_exporter(env) == chosen


@pytest.mark.parametrize(
    ("url", "system", "destination"),
    [
        ("sqlite:///data/queue.db?queue=deliveryrequests", "sqlite", "deliveryrequests"),
        ("amqp://guest:guest@rabbit:5672/%2F?queue=e2e-1", "rabbitmq", "e2e-1"),
        ("amqps://user:pass@rabbit/%2F?heartbeat=30&queue=q", "rabbitmq", "q"),
        ("servicebus://ns.servicebus.windows.net/deliveries", "servicebus", "deliveries"),
    ],
)
def test_the_messaging_system_and_destination_come_from_the_queue_url(
    url: str, system: str, destination: str
) -> None:
    assert MessagingTarget.from_queue_url(url) == MessagingTarget(system, destination)


def test_without_an_exporter_spans_are_not_recorded_but_have_ids_and_honour_a_sampled_caller() -> (
    None
):
    tracer = telemetry.provider_without_export(Resource.create({})).get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        assert not root.is_recording()
        assert root.get_span_context().is_valid  # ids for log lines and traceparent
        carried: dict[str, str] = {}
        telemetry.inject_context(carried)
        flags = int(carried["traceparent"].rsplit("-", 1)[1], 16)
        assert flags & 0x01 == 0  # not sampled, and downstream is told so
    caller = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    parent = trace.set_span_in_context(NonRecordingSpan(caller))
    with tracer.start_as_current_span("child", context=parent) as child:
        assert child.is_recording()
        assert child.get_span_context().trace_id == caller.trace_id


def test_the_consumer_span_is_the_child_of_the_producer_span(spans: InMemorySpanExporter) -> None:
    properties = {"operation": "delivery"}
    with telemetry.producer_span(
        TARGET, message_id="d-1", properties=properties, body_size=2
    ) as produced:
        pass
    assert properties["traceparent"].split("-")[1] == format(
        produced.get_span_context().trace_id, "032x"
    )
    assert properties["operation"] == "delivery"  # the application's own properties stay

    # Later, in another process: only the properties travelled.
    with telemetry.consumer_span(
        TARGET,
        message_id="d-1",
        properties=dict(properties),
        delivery_count=2,
        body_size=2,
    ):
        pass
    producer = _named(spans, "send deliveryrequests")
    consumer = _named(spans, "process deliveryrequests")
    assert producer.kind is SpanKind.PRODUCER and consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None and consumer.parent.is_remote
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.links == ()  # parent-child, not links: one trace
    assert {
        "messaging.system": "sqlite",
        "messaging.destination.name": "deliveryrequests",
        "messaging.operation.type": "process",
        "messaging.message.id": "d-1",
        "messaging.message.delivery_count": 2,
    }.items() <= dict(consumer.attributes or {}).items()
    assert (producer.attributes or {})["messaging.operation.type"] == "send"


def test_a_message_without_trace_context_starts_a_trace_of_its_own(
    spans: InMemorySpanExporter,
) -> None:
    with telemetry.consumer_span(
        TARGET, message_id="m", properties={}, delivery_count=1, body_size=0
    ):
        pass
    consumer = _named(spans, "process deliveryrequests")
    assert consumer.parent is None


async def test_trace_context_survives_the_queue_and_a_redelivery(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    queue = await connect_message_queue(
        f"sqlite:///{tmp_path}/q.db?queue=t", QueueOptions(lock_seconds=30)
    )
    message = OutgoingMessage("d-2", b"{}", {"operation": "delivery"})
    with telemetry.producer_span(
        TARGET, message_id="d-2", properties=message.properties, body_size=2
    ) as produced:
        await queue.send(message)
    first = (await queue.receive(wait_seconds=2))[0]
    await queue.abandon(first)
    again = (await queue.receive(wait_seconds=2))[0]
    await queue.complete(again)
    await queue.close()
    for received in (first, again):
        context = trace.get_current_span(telemetry.extract_context(received.properties))
        assert context.get_span_context().span_id == produced.get_span_context().span_id


def test_log_lines_carry_trace_and_span_ids_and_bound_fields(spans: InMemorySpanExporter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("unit"))
    logger = logging.getLogger("test_telemetry.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:

        def in_a_task() -> None:
            bind_log_fields(deliveryId="d-3")
            with trace.get_tracer("t").start_as_current_span("work") as span:
                logger.info("inside", extra={"droneId": "drone-1"})
                ids = span.get_span_context()
            logger.info("after")
            expected.update(
                trace_id=format(ids.trace_id, "032x"), span_id=format(ids.span_id, "016x")
            )

        expected: dict[str, str] = {}
        # A copy of the context, as each request and message gets: nothing leaks out of it.
        contextvars.copy_context().run(in_a_task)
        logger.info("elsewhere")
    finally:
        logger.removeHandler(handler)
    inside, after, elsewhere = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["trace_id"] == expected["trace_id"]
    assert inside["span_id"] == expected["span_id"]
    assert inside["deliveryId"] == "d-3" and inside["droneId"] == "drone-1"
    assert {"time", "level", "service", "message"} <= inside.keys()
    assert "trace_id" not in after and after["deliveryId"] == "d-3"
    assert "trace_id" not in elsewhere and "deliveryId" not in elsewhere


class _FlakyServer:
    """Answers 503 once, then 200; keeps the traceparent headers it was sent."""

    def __init__(self) -> None:
        self.traceparents: list[str] = []
        server = self

        class Handler(LoopbackHandler):
            def respond(self) -> None:
                self.body()
                server.traceparents.append(self.headers.get("traceparent", ""))
                status = 503 if len(server.traceparents) == 1 else 200
                answer(self, status)

        self._server = LoopbackServer(Handler)
        self.url = self._server.url

    def close(self) -> None:
        self._server.close()


async def test_every_attempt_of_a_call_is_a_client_span_that_carries_the_context(
    spans: InMemorySpanExporter,
) -> None:
    server = _FlakyServer()
    client = ServiceClient(
        "flaky", server.url, timeout_seconds=5, attempts=3, max_wait_seconds=0.05
    )
    retries = DOWNSTREAM_RETRIES.labels("flaky")._value.get()
    try:
        with trace.get_tracer("t").start_as_current_span("caller") as caller:
            response = await client.request("PUT", "/api/things/1", json={})
    finally:
        await client.aclose()
        server.close()
    assert response.status_code == 200
    assert DOWNSTREAM_RETRIES.labels("flaky")._value.get() == retries + 1
    attempts = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert len(attempts) == 2
    trace_id = format(caller.get_span_context().trace_id, "032x")
    for span, header in zip(attempts, server.traceparents, strict=True):
        assert span.parent is not None and span.parent.span_id == caller.get_span_context().span_id
        assert (span.attributes or {})["peer.service"] == "flaky"
        assert header.startswith(f"00-{trace_id}-{format(span.context.span_id, '016x')}-")
    assert attempts[0].status.status_code is StatusCode.ERROR  # the 503


def test_where_no_span_is_recorded_a_call_carries_the_callers_context_without_a_span(
    monkeypatch: pytest.MonkeyPatch, spans: InMemorySpanExporter
) -> None:
    monkeypatch.setattr(telemetry, "_records_spans", False)
    context = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0))
    headers: dict[str, str] = {}
    properties: dict[str, str] = {}
    with trace.use_span(NonRecordingSpan(context)) as caller:
        with telemetry.client_span("peer", "GET", "http://peer/x", headers) as span:
            assert span is caller
        with telemetry.producer_span(
            TARGET, message_id="m", properties=properties, body_size=1
        ) as span:
            assert span is caller
    assert headers["traceparent"] == f"00-{0xABC:032x}-{0xDEF:016x}-00"
    assert properties["traceparent"] == headers["traceparent"]
    assert spans.get_finished_spans() == ()
