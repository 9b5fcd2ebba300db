"""Without an exporter a request still runs in its caller's trace context, cheaply."""

from __future__ import annotations

import httpx
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chassis.telemetry import TraceContextOnly, records_spans

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


def _app() -> Starlette:
    async def seen(request: Request) -> JSONResponse:
        context = trace.get_current_span().get_span_context()
        return JSONResponse({"trace": f"{context.trace_id:032x}", "valid": context.is_valid})

    app = Starlette(routes=[Route("/api/x", seen), Route("/healthz", seen)])
    app.add_middleware(TraceContextOnly)
    return app


async def test_a_request_continues_its_callers_trace_and_a_probe_has_none() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        traced = await client.get(
            "/api/x", headers={"traceparent": f"00-{CALLER_TRACE}-b7ad6b7169203331-01"}
        )
        probe = await client.get(
            "/healthz", headers={"traceparent": f"00-{CALLER_TRACE}-b7ad6b7169203331-01"}
        )
    assert traced.json() == {"trace": CALLER_TRACE, "valid": True}
    assert probe.json()["valid"] is False
    # Outside a request nothing is left attached.
    assert not trace.get_current_span().get_span_context().is_valid


def test_spans_are_recorded_only_with_an_exporter_or_a_chosen_sampler() -> None:
    assert not records_spans({})
    assert not records_spans({"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    assert records_spans({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert records_spans({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"})
    assert records_spans({"OTEL_TRACES_SAMPLER": "always_on"})
