"""Telemetry receivers the tests run on loopback: what an OTLP collector and Application
Insights' ingestion endpoint would receive from the services, parsed for assertions."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

KIND = {
    SpanProto.SPAN_KIND_INTERNAL: "internal",
    SpanProto.SPAN_KIND_SERVER: "server",
    SpanProto.SPAN_KIND_CLIENT: "client",
    SpanProto.SPAN_KIND_PRODUCER: "producer",
    SpanProto.SPAN_KIND_CONSUMER: "consumer",
}


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip" or body[:2] == b"\x1f\x8b":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class _Receiver:
    """An HTTP server on a free loopback port, in a thread; `handle` parses one POST."""

    def __init__(self, path: str, handle: Callable[[bytes], tuple[bytes, str]]) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != path:
                    self.send_error(404)
                    return
                with receiver.lock:
                    reply, content_type = handle(
                        _decoded(body, self.headers.get("Content-Encoding", ""))
                    )
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output is no place for an access log

        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> _Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    attributes: dict[str, Any] = field(default_factory=dict)


class OtlpReceiver(_Receiver):
    """OTLP/HTTP with protobuf, as the services' OTLP exporter sends it (POST /v1/traces)."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        super().__init__("/v1/traces", self._export)

    def _export(self, body: bytes) -> tuple[bytes, str]:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name", "")),
                            name=span.name,
                            kind=KIND.get(span.kind, "unspecified"),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        return ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"

    def snapshot(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


class AppInsightsReceiver(_Receiver):
    """Application Insights' ingestion endpoint (POST /v2.1/track): a JSON array of
    envelopes, or newline-delimited envelopes, gzipped or not."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        super().__init__("/v2.1/track", self._track)

    def _track(self, body: bytes) -> tuple[bytes, str]:
        text = body.decode()
        try:
            parsed = json.loads(text)
            items = parsed if isinstance(parsed, list) else [parsed]
        except json.JSONDecodeError:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        self.envelopes.extend(items)
        reply = {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
        return json.dumps(reply).encode(), "application/json"

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.envelopes)
