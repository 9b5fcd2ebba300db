"""W3C trace context rides in the application properties on every queue adapter, so that
workflow's span is the child of ingestion's (see chassis/telemetry.py), also on redelivery
and after a replay from the dead letters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from chassis import telemetry
from chassis.queue import MessageQueue, OutgoingMessage

Connect = Callable[[], Awaitable[MessageQueue]]


def _tracer() -> trace.Tracer:
    # Recording or not, a span of the SDK has ids to propagate; the global one may be a no-op.
    return TracerProvider().get_tracer("contract")


async def test_trace_context_travels_in_the_properties(queue_factory: Connect) -> None:
    queue = await queue_factory()
    message = OutgoingMessage("traced-1", b"{}", {"operation": "delivery"})
    with _tracer().start_as_current_span("send", kind=trace.SpanKind.PRODUCER) as producer:
        telemetry.inject_context(message.properties)
        await queue.send(message)
    sent = producer.get_span_context()

    got = (await queue.receive(wait_seconds=5))[0]
    assert got.properties["operation"] == "delivery"
    parent = trace.get_current_span(telemetry.extract_context(got.properties)).get_span_context()
    assert parent.is_valid and parent.is_remote
    assert (parent.trace_id, parent.span_id) == (sent.trace_id, sent.span_id)

    # Redelivered, and replayed from the dead letters: still the same trace.
    await queue.abandon(got)
    again = (await queue.receive(wait_seconds=5))[0]
    assert again.properties["traceparent"] == got.properties["traceparent"]
    await queue.dead_letter(again, reason="Test", description="replay me")
    assert await queue.replay_dead_letter("traced-1")
    replayed = (await queue.receive(wait_seconds=5))[0]
    assert replayed.properties["traceparent"] == got.properties["traceparent"]
    await queue.complete(replayed)
