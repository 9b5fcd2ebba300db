"""The retry policy of calls between services, against a real HTTP server on loopback that
answers each path with a scripted sequence of statuses and counts what it was sent."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import pytest

from chassis.http import ClientClosed, DownstreamUnavailable, Resilience, ServiceClient
from tests.loopback import LoopbackHandler, LoopbackServer, answer

Answer = tuple[int, dict[str, str]]


class ScriptedServer:
    """Answers the n-th request to a path with the n-th scripted answer (the last repeats)."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Answer]] = {}
        self.hits: defaultdict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        server = self

        class Handler(LoopbackHandler):
            def respond(self) -> None:
                self.body()
                with server.lock:
                    n = server.hits[self.path]
                    server.hits[self.path] += 1
                    script = server.scripts.get(self.path, [(404, {})])
                status, headers = script[min(n, len(script) - 1)]
                body = f'{{"status": {status}, "attempt": {n + 1}}}'.encode()
                if status in (204, 304):
                    body = b""
                answer(self, status, body, {**headers, "Content-Type": "application/json"})

        self._server = LoopbackServer(Handler)
        self.url = self._server.url

    def script(self, path: str, *answers: int | Answer) -> str:
        self.scripts[path] = [a if isinstance(a, tuple) else (a, {}) for a in answers]
        return path

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_for(
    url: str, *, attempts: int = 3, timeout: float = 2.0, max_wait: float = 0.01
) -> ServiceClient:
    return ServiceClient(
        "package", url, timeout_seconds=timeout, attempts=attempts, max_wait_seconds=max_wait
    )


async def warm_up(client: ServiceClient, server: ScriptedServer) -> None:
    """The first request in a process pays for lazy set-up: keep that out of timings."""
    await client.request("GET", server.script("/warm-up", 200))


@pytest.fixture
async def client(server: ScriptedServer) -> AsyncIterator[ServiceClient]:
    c = client_for(server.url)
    yield c
    await c.aclose()


async def test_a_success_is_returned_after_one_attempt(
    server: ScriptedServer, client: ServiceClient
) -> None:
    path = server.script("/ok", 200)
    response = await client.request("GET", path)
    assert response.status_code == 200
    assert response.json() == {"status": 200, "attempt": 1}
    assert server.hits[path] == 1


async def test_transient_failures_are_retried_until_it_works(
    server: ScriptedServer, client: ServiceClient
) -> None:
    path = server.script("/flaky", 503, 503, 200)
    response = await client.request("PUT", path, json={"size": "Small"})
    assert response.status_code == 200
    assert response.json()["attempt"] == 3
    assert server.hits[path] == 3


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_every_retryable_5xx_is_retried(
    server: ScriptedServer, client: ServiceClient, status: int
) -> None:
    path = server.script(f"/once-{status}", status, 204)
    assert (await client.request("DELETE", path)).status_code == 204
    assert server.hits[path] == 2


async def test_a_500_is_answered_at_once_and_does_not_open_the_circuit(
    server: ScriptedServer,
) -> None:
    # The service is up and failed on this request: the caller judges (workflow retries it
    # later, not in place), and calls for other requests are not shut out.
    client = ServiceClient(
        "package",
        server.url,
        timeout_seconds=5,
        attempts=4,
        max_wait_seconds=0.01,
        resilience=Resilience(breaker_threshold=2),
    )
    try:
        path = server.script("/bug", *([500] * 5))
        for _ in range(5):
            assert (await client.request("GET", path)).status_code == 500
        assert server.hits[path] == 5
        ok = server.script("/fine", 200)
        assert (await client.request("GET", ok)).status_code == 200
    finally:
        await client.aclose()


async def test_429_with_retry_after_zero_is_retried_at_once(
    server: ScriptedServer,
) -> None:
    # Five retries: our own backoff would sleep at least 0.05 + 0.1 + 0.2 + 0.4 + 0.8 s.
    # (A breaker that tolerates them: this is about Retry-After, not about the breaker.)
    client = ServiceClient(
        "package",
        server.url,
        timeout_seconds=2.0,
        attempts=6,
        max_wait_seconds=5.0,
        resilience=Resilience(breaker_threshold=50),
    )
    path = server.script("/busy-0", *[(429, {"Retry-After": "0"})] * 5, 200)
    try:
        await warm_up(client, server)
        started = time.monotonic()
        assert (await client.request("GET", path)).status_code == 200
        elapsed = time.monotonic() - started
    finally:
        await client.aclose()
    assert server.hits[path] == 6
    assert elapsed < 0.75


async def test_retry_after_is_waited_for(server: ScriptedServer) -> None:
    # Our own first backoff would be at most 0.15 s; the server asks for 0.3 s.
    client = client_for(server.url, max_wait=5.0)
    path = server.script("/busy-03", (429, {"Retry-After": "0.3"}), 200)
    started = time.monotonic()
    try:
        assert (await client.request("GET", path)).status_code == 200
    finally:
        await client.aclose()
    assert server.hits[path] == 2
    assert time.monotonic() - started >= 0.3


async def test_a_long_retry_after_is_capped_at_the_max_wait(server: ScriptedServer) -> None:
    client = client_for(server.url, max_wait=0.05)
    path = server.script("/busy-3600", (503, {"Retry-After": "3600"}), 200)
    started = time.monotonic()
    try:
        assert (await client.request("GET", path)).status_code == 200
    finally:
        await client.aclose()
    assert time.monotonic() - started < 2.0


async def test_a_retry_after_date_falls_back_to_backoff(
    server: ScriptedServer, client: ServiceClient
) -> None:
    path = server.script("/busy-date", (503, {"Retry-After": "Wed, 21 Oct 2065 07:28:00 GMT"}), 200)
    started = time.monotonic()
    assert (await client.request("GET", path)).status_code == 200
    assert server.hits[path] == 2
    assert time.monotonic() - started < 2.0


async def test_a_nonsense_retry_after_does_not_stall_the_call(server: ScriptedServer) -> None:
    client = client_for(server.url, max_wait=0.05)
    path = server.script("/busy-nan", (503, {"Retry-After": "nan"}), 200)
    try:
        response = await asyncio.wait_for(client.request("GET", path), timeout=0.5)
    finally:
        await client.aclose()
    assert response.status_code == 200


async def test_a_bad_request_is_returned_after_one_attempt(
    server: ScriptedServer, client: ServiceClient
) -> None:
    path = server.script("/bad", 400, 200)
    response = await client.request("PUT", path, json={})
    # Not retried, not raised: the caller decides what a 400 means.
    assert response.status_code == 400
    assert response.json() == {"status": 400, "attempt": 1}
    assert server.hits[path] == 1


@pytest.mark.parametrize("status", [401, 403, 404, 409, 422])
async def test_other_client_errors_are_returned_after_one_attempt(
    server: ScriptedServer, client: ServiceClient, status: int
) -> None:
    path = server.script(f"/client-error-{status}", status, 200)
    assert (await client.request("GET", path)).status_code == status
    assert server.hits[path] == 1


async def test_always_failing_is_unavailable_after_exactly_the_attempts(
    server: ScriptedServer,
) -> None:
    for attempts in (1, 4):
        client = client_for(server.url, attempts=attempts)
        path = server.script(f"/down-{attempts}", 503)
        try:
            with pytest.raises(DownstreamUnavailable) as caught:
                await client.request("GET", path)
        finally:
            await client.aclose()
        assert server.hits[path] == attempts
        assert caught.value.service == "package"
        assert "HTTP 503" in str(caught.value)


async def test_a_server_that_never_answers_times_out_in_bounded_time() -> None:
    # Listening but never accepting: the connection is made, no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = client_for(f"http://127.0.0.1:{silent.getsockname()[1]}", attempts=2, timeout=0.2)
        started = time.monotonic()
        try:
            with pytest.raises(DownstreamUnavailable, match="Timeout"):
                await client.request("GET", "/never")
        finally:
            await client.aclose()
        elapsed = time.monotonic() - started
    # Two attempts of 0.2 s each, and a short wait between them.
    assert 0.4 <= elapsed < 3.0


async def test_a_closed_port_is_unavailable() -> None:
    client = client_for(f"http://127.0.0.1:{closed_port()}", attempts=3)
    started = time.monotonic()
    try:
        with pytest.raises(DownstreamUnavailable, match="ConnectorError") as caught:
            await client.request("GET", "/anything")
    finally:
        await client.aclose()
    assert caught.value.service == "package"
    assert time.monotonic() - started < 2.0


# After aclose()


class RetryLogged(logging.Handler):
    """Sets `seen` once the client logs that it will retry (it is then waiting to)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("retrying call"):
            self.seen.set()


async def test_a_closed_client_refuses_calls_instead_of_opening_a_new_pool(
    server: ScriptedServer,
) -> None:
    client = client_for(server.url)
    path = server.script("/after-close", 200)
    assert (await client.request("GET", path)).status_code == 200
    await client.aclose()
    with pytest.raises(ClientClosed, match="package is closed"):
        await client.request("GET", path)
    assert server.hits[path] == 1
    assert client._session is None  # nothing left open for nobody to close


async def test_a_call_waiting_to_retry_when_the_client_closes_is_refused(
    server: ScriptedServer,
) -> None:
    client = client_for(server.url, max_wait=5.0)
    path = server.script("/close-while-waiting", (503, {"Retry-After": "0.5"}), 200)
    waiting = RetryLogged()
    logging.getLogger("chassis.http").addHandler(waiting)
    try:
        call = asyncio.create_task(client.request("GET", path))
        await asyncio.wait_for(waiting.seen.wait(), 10)  # the call waits to retry
    finally:
        logging.getLogger("chassis.http").removeHandler(waiting)
    await client.aclose()
    with pytest.raises(ClientClosed):
        await call
    assert server.hits[path] == 1
    assert client._session is None


# The circuit breaker and the bulkhead


async def test_an_open_breaker_fails_calls_at_once_without_reaching_the_service(
    server: ScriptedServer,
) -> None:
    path = server.script("/breaker-down", 503)
    client = ServiceClient(
        "package",
        server.url,
        timeout_seconds=2,
        attempts=2,
        max_wait_seconds=0.01,
        resilience=Resilience(breaker_threshold=3, breaker_recovery_seconds=30),
    )
    try:
        for _ in range(2):  # 2 calls x 2 attempts: the third failed attempt opens it
            with pytest.raises(DownstreamUnavailable):
                await client.request("GET", path)
        assert server.hits[path] == 3
        with pytest.raises(DownstreamUnavailable, match="circuit open"):
            await client.request("GET", path)
        assert server.hits[path] == 3  # refused locally: the struggling service is spared
    finally:
        await client.aclose()


async def test_after_the_recovery_time_one_trial_call_closes_the_breaker(
    server: ScriptedServer,
) -> None:
    path = server.script("/breaker-recovers", 503, 503, 200)
    client = ServiceClient(
        "package",
        server.url,
        timeout_seconds=2,
        attempts=1,
        max_wait_seconds=0.01,
        resilience=Resilience(breaker_threshold=2, breaker_recovery_seconds=0.3),
    )
    try:
        for _ in range(2):
            with pytest.raises(DownstreamUnavailable):
                await client.request("GET", path)
        with pytest.raises(DownstreamUnavailable, match="circuit open"):
            await client.request("GET", path)
        await asyncio.sleep(0.4)  # the breaker's own recovery time, the behaviour under test
        assert (await client.request("GET", path)).status_code == 200
        assert (await client.request("GET", path)).status_code == 200
    finally:
        await client.aclose()


async def test_a_full_bulkhead_turns_callers_away_instead_of_queueing_them_forever() -> None:
    # A server that accepts connections and never answers: every call holds its place.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = ServiceClient(
            "package",
            url,
            timeout_seconds=1.5,
            attempts=1,
            max_wait_seconds=0.01,
            resilience=Resilience(bulkhead_max_concurrent=2, bulkhead_max_wait_seconds=0.2),
        )
        try:
            stuck = [asyncio.create_task(client.request("GET", "/slow")) for _ in range(2)]
            await asyncio.sleep(0.05)
            started = time.monotonic()
            with pytest.raises(DownstreamUnavailable, match="bulkhead full"):
                await client.request("GET", "/slow")
            assert time.monotonic() - started < 1.0
            for task in stuck:
                with pytest.raises(DownstreamUnavailable):
                    await task
        finally:
            await client.aclose()
