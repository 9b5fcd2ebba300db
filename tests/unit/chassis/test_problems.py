"""An error means 500 (the service failed on this request) unless a server it depends on was
out of reach: then 503 with Retry-After, which callers retry (a 500 they do not)."""

from __future__ import annotations

import socket

import asyncpg
import pytest
import redis.asyncio as redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chassis.problems import install_problem_handlers, is_unavailable


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    port = closed_port()

    @app.get("/postgres")
    async def postgres() -> None:
        await asyncpg.connect(f"postgresql://nobody@127.0.0.1:{port}/none", timeout=2)

    @app.get("/redis")
    async def cache() -> None:
        await redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=2).ping()

    @app.get("/bug")
    async def bug() -> None:
        raise ValueError("a bug for this input")

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/postgres", "/redis"])
def test_a_datastore_out_of_reach_is_a_503_to_retry(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert r.json()["detail"] == "a server it depends on is unavailable"


def test_any_other_error_is_a_500_with_nothing_inside(client: TestClient) -> None:
    r = client.get("/bug")
    assert r.status_code == 500
    assert "a bug" not in r.text


def test_an_error_raised_from_an_unreachable_server_is_unavailable() -> None:
    try:
        try:
            raise ConnectionRefusedError("refused")
        except OSError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as wrapped:
        assert is_unavailable(wrapped)
    assert not is_unavailable(KeyError("x"))
