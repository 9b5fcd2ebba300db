"""Store calls and the documents they touch, counted on a real SQLite store; ETags."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest

from chassis.documents import (
    Collection,
    ConcurrencyConflict,
    DocumentExists,
    connect_document_store,
    new_etag,
)
from chassis.documents.metered import OPERATIONS, MeteredStore


def counts(collection: str) -> dict[str, tuple[float, float]]:
    """(calls, documents) by operation, as /metrics shows them."""

    def sample(name: str, op: str) -> float:
        labels = {"collection": collection, "operation": op}
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return {
        op: (sample("store_calls_total", op), sample("store_documents_total", op))
        for op in OPERATIONS
    }


async def test_each_call_and_each_document_is_counted(tmp_path: Path) -> None:
    inner = await connect_document_store(f"sqlite:///{tmp_path}/m.db", Collection(name="metered"))
    store = MeteredStore(inner, "metered")
    try:
        created = await store.create_many([("a", {"n": 1}), ("b", {"n": 2}), ("a", {"n": 3})])
        assert isinstance(created[2], DocumentExists)
        a = await store.get("a")
        assert a is not None
        await store.replace("a", {"n": 4}, etag=a.etag)
        with pytest.raises(ConcurrencyConflict):  # a failed write was still a call, and billed
            await store.replace("a", {"n": 5}, etag=a.etag)
        assert sorted(await store.get_many(["a", "b", "missing"])) == ["a", "b"]
        await store.upsert("c", {"n": 6})
        assert len(await store.find()) == 3
        assert await store.delete("b")
        assert len(await store.versions()) == 2
        assert counts("metered") == {
            "read": (2, 4),  # get, then get_many of three ids (a miss is a read too)
            "write": (4, 6),  # create_many of three, two replaces, an upsert
            "delete": (1, 1),
            "query": (2, 5),  # find returned 3, versions listed 2
        }
    finally:
        await store.close()


async def test_the_counts_are_scraped_as_counters_shared_by_the_stores_of_a_collection(
    tmp_path: Path,
) -> None:
    inner = await connect_document_store(f"sqlite:///{tmp_path}/s.db", Collection(name="shared"))
    first, second = MeteredStore(inner, "shared_a"), MeteredStore(inner, "shared_a")
    try:
        await first.create("a", {"n": 1})
        await second.get_many(["a", "b"])
        await second.get("a")
        scraped = generate_latest().decode()
        assert 'store_calls_total{collection="shared_a",operation="read"} 2.0' in scraped
        assert 'store_documents_total{collection="shared_a",operation="read"} 3.0' in scraped
        assert 'store_calls_total{collection="shared_a",operation="write"} 1.0' in scraped
        assert "# TYPE store_calls_total counter" in scraped
    finally:
        await inner.close()


def test_etags_are_fresh_32_hex_digits() -> None:
    etags = {new_etag() for _ in range(1000)}
    assert len(etags) == 1000
    assert all(len(e) == 32 and int(e, 16) >= 0 for e in etags)
