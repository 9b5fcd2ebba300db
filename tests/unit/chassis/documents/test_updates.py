"""The optimistic-update loop (chassis/documents/updates.py) on the embedded store: racing
writers each apply their change exactly once, on the body as it last stood."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chassis.documents import (
    Collection,
    ConcurrencyConflict,
    Document,
    DocumentStore,
    connect_document_store,
)
from chassis.documents.updates import UPDATE_ATTEMPTS, update_with_retry

COUNTERS = Collection(name="counters", partition_key="id")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DocumentStore]:
    store = await connect_document_store(f"sqlite:///{tmp_path}/updates.db", COUNTERS)
    yield store
    await store.close()


def add(n: int) -> Any:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "total": body["total"] + n, "seen": [*body["seen"], n]}

    return change


async def test_racing_changes_are_each_applied_once(store: DocumentStore) -> None:
    await store.create("c", {"total": 0, "seen": []})
    results = await asyncio.gather(*(update_with_retry(store, "c", add(n)) for n in range(1, 11)))
    doc = await store.get("c")
    assert doc is not None
    assert doc.body["total"] == 55
    assert sorted(doc.body["seen"]) == list(range(1, 11))
    assert doc.body in results  # the last writer answered the body as it now stands


async def test_a_missing_document_is_none_and_the_change_is_not_called(
    store: DocumentStore,
) -> None:
    def never(body: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("called")

    assert await update_with_retry(store, "nothing", never) is None
    assert await store.get("nothing") is None


async def test_no_change_writes_nothing(store: DocumentStore) -> None:
    created = await store.create("c", {"total": 1, "seen": []})
    assert await update_with_retry(store, "c", lambda body: None) == created.body
    assert await update_with_retry(store, "c", lambda body: dict(body)) == created.body
    doc = await store.get("c")
    assert doc is not None and doc.etag == created.etag


async def test_a_refusal_raised_by_the_change_writes_nothing(store: DocumentStore) -> None:
    created = await store.create("c", {"total": 1, "seen": []})

    def refuse(body: dict[str, Any]) -> dict[str, Any]:
        raise LookupError("cancelled")

    with pytest.raises(LookupError):
        await update_with_retry(store, "c", refuse)
    doc = await store.get("c")
    assert doc is not None and doc.etag == created.etag


class Contended:
    """The real store, but another writer changes the document before each of our writes."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self.replaces = 0

    async def get(self, id: str) -> Document | None:
        return await self._store.get(id)

    async def replace(self, id: str, body: dict[str, Any], *, etag: str) -> Document:
        self.replaces += 1
        current = await self._store.get(id)
        assert current is not None
        await self._store.replace(id, {**current.body, "other": self.replaces}, etag=etag)
        return await self._store.replace(id, body, etag=etag)  # our ETag is stale now


async def test_contention_that_never_ends_gives_up_after_the_bounded_attempts(
    store: DocumentStore,
) -> None:
    await store.create("c", {"total": 0, "seen": []})
    contended = Contended(store)
    with pytest.raises(ConcurrencyConflict):
        await update_with_retry(contended, "c", add(1))  # type: ignore[arg-type]
    assert contended.replaces == UPDATE_ATTEMPTS
    with pytest.raises(ConcurrencyConflict):
        await update_with_retry(contended, "c", add(1), attempts=3)  # type: ignore[arg-type]
    assert contended.replaces == UPDATE_ATTEMPTS + 3
    doc = await store.get("c")
    assert doc is not None and doc.body["total"] == 0
