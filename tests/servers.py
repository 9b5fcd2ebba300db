"""Where the real servers for tests are, and what to do when one is missing.

On a laptop a missing server skips its tests with the reason. In CI (CI=true) or when
REQUIRE_SERVERS names it, a missing server fails them: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
# Azure (or the official emulators): only run when configured; never required.
COSMOS_URL = os.environ.get("TEST_COSMOS_URL", "")
SERVICEBUS_URL = os.environ.get("TEST_SERVICEBUS_URL", "")

LOCAL_SERVERS = {"postgres": POSTGRES_URL, "redis": REDIS_URL, "rabbitmq": AMQP_URL}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_unless_ci(reason: str) -> None:
    """Skip on a laptop; in CI a missing prerequisite is a failure, never a pass by skipping."""
    if in_ci():
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _required() -> set[str]:
    named = {s.strip() for s in os.environ.get("REQUIRE_SERVERS", "").split(",") if s.strip()}
    if in_ci():
        named |= set(LOCAL_SERVERS)
    return named


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    default_port = {"postgresql": 5432, "redis": 6379, "amqp": 5672}.get(parts.scheme, 0)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def need_server(name: str) -> str:
    """Return the server's URL, or skip (laptop) / fail (CI) with a clear reason."""
    url = LOCAL_SERVERS[name]
    if reachable(url):
        return url
    reason = f"{name} is not reachable at {url} (set TEST_{name.upper()}_URL or start it)"
    if name in _required():
        pytest.fail(f"required server missing: {reason}", pytrace=False)
    pytest.skip(reason)
