"""chassis/limits.py: the body limit and the bound on requests in flight, on the middleware
alone (httpx's ASGI transport) and wired into a service app behind a real uvicorn."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from chassis.app import create_service_app
from chassis.limits import RequestLimits
from chassis.settings import ServiceSettings

LIMIT = 1000


def echo_app(
    release: asyncio.Event | None = None, entered: asyncio.Queue[None] | None = None
) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        if entered is not None:
            entered.put_nowait(None)
        if release is not None:
            await release.wait()
        return JSONResponse({"received": len(body)})

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"status": "live"})

    return Starlette(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/health/live", live),
        ]
    )


def client_for(app: RequestLimits) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def test_a_body_at_the_limit_is_served_and_one_byte_more_is_refused() -> None:
    app = RequestLimits(echo_app(), max_body_bytes=LIMIT, max_in_flight=4, retry_after_seconds=1)
    async with client_for(app) as client:
        ok = await client.post("/echo", content=b"x" * LIMIT)
        assert ok.status_code == 200 and ok.json() == {"received": LIMIT}
        refused = await client.post("/echo", content=b"x" * (LIMIT + 1))
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["limit"] == LIMIT
    assert str(LIMIT) in problem["detail"]


async def test_a_streamed_body_without_length_is_refused_once_it_passes_the_limit() -> None:
    app = RequestLimits(echo_app(), max_body_bytes=LIMIT, max_in_flight=4, retry_after_seconds=1)

    async def chunks() -> object:
        for _ in range(5):
            yield b"y" * 300

    async with client_for(app) as client:
        refused = await client.post("/echo", content=chunks())  # type: ignore[arg-type]
    assert refused.status_code == 413
    assert refused.json()["limit"] == LIMIT


async def test_beyond_the_requests_in_flight_the_answer_is_429_with_retry_after() -> None:
    release = asyncio.Event()
    entered: asyncio.Queue[None] = asyncio.Queue()
    app = RequestLimits(
        echo_app(release, entered), max_body_bytes=LIMIT, max_in_flight=2, retry_after_seconds=3
    )
    async with client_for(app) as client:
        held = [asyncio.create_task(client.post("/echo", content=b"{}")) for _ in range(2)]
        async with asyncio.timeout(10):
            for _ in held:
                await entered.get()
        refused = await client.post("/echo", content=b"{}")
        probe = await client.get("/health/live")  # probes are never refused
        release.set()
        served = await asyncio.gather(*held)
        after = await client.post("/echo", content=b"{}")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"
    assert refused.json()["limit"] == 2
    assert probe.status_code == 200
    assert [r.status_code for r in served] == [200, 200]
    assert after.status_code == 200 and app.in_flight == 0


# ---------------------------------------------------------------- wired, on a real server


@pytest.fixture
def service_url() -> Iterator[str]:
    router = APIRouter()

    @router.post("/api/things")
    async def things(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    settings = ServiceSettings(max_body_bytes=LIMIT, max_in_flight_requests=8)
    app = create_service_app(name="limits", summary="t", routers=[router], settings=settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start within 10 s"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_service_app_refuses_an_oversized_body(service_url: str) -> None:
    with httpx.Client(base_url=service_url, timeout=10) as client:
        assert client.post("/api/things", content=b"x" * LIMIT).status_code == 200
        refused = client.post("/api/things", content=b"x" * (LIMIT * 4))
        assert refused.status_code == 413
        assert refused.json()["limit"] == LIMIT
