"""Every adapter of an interface is run through the same contract tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from chassis.documents import Collection, DocumentStore, connect_document_store
from chassis.queue import MessageQueue, QueueOptions, connect_message_queue
from tests import servers

STORE_BACKENDS = ["sqlite", "postgres", "redis", "cosmos"]


def _store_url(backend: str, tmp_path: object) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/documents.db"
    if backend == "cosmos":
        if not servers.COSMOS_URL:
            pytest.skip("Cosmos DB not configured: set TEST_COSMOS_URL (Azure or the emulator)")
        return servers.COSMOS_URL
    return servers.need_server(backend)


@pytest.fixture(params=STORE_BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[DocumentStore]:
    url = _store_url(request.param, tmp_path)
    # A fresh collection per test: tests never see each other's documents.
    collection = Collection(
        name=f"contract_{uuid.uuid4().hex[:12]}", indexed=("ownerId", "month"), partition_key="id"
    )
    s = await connect_document_store(url, collection)
    try:
        yield s
    finally:
        drop = getattr(s, "drop", None)
        if drop is not None:
            await drop()
        await s.close()


QUEUE_BACKENDS = ["sqlite", "rabbitmq", "servicebus"]
CONTRACT_OPTIONS = QueueOptions(lock_seconds=1.0, max_delivery_count=3, prefetch=4)


def _queue_url(backend: str, tmp_path: object, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/queue.db?queue={name}"
    if backend == "servicebus":
        if not servers.SERVICEBUS_URL:
            pytest.skip("Service Bus not configured: set TEST_SERVICEBUS_URL (Azure or emulator)")
        return servers.SERVICEBUS_URL
    base = servers.need_server("rabbitmq")
    return f"{base}?queue={name}"


@pytest.fixture(params=QUEUE_BACKENDS)
async def queue_factory(
    request: pytest.FixtureRequest, tmp_path: object
) -> AsyncIterator[Callable[[], Awaitable[MessageQueue]]]:
    """Opens connections to one fresh queue; several connections play several consumers."""
    url = _queue_url(request.param, tmp_path, f"contract-{uuid.uuid4().hex[:12]}")
    opened: list[MessageQueue] = []

    async def connect() -> MessageQueue:
        q = await connect_message_queue(url, CONTRACT_OPTIONS)
        opened.append(q)
        return q

    try:
        yield connect
    finally:
        for q in opened:
            with contextlib.suppress(Exception):  # already closed, as a dead consumer
                await q.close()
        cleaner = await connect_message_queue(url, CONTRACT_OPTIONS)
        drop = getattr(cleaner, "drop", None)
        if drop is not None:
            await drop()
        await cleaner.close()
