"""Store calls and the documents they touch, counted on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from chassis.documents import (
    Collection,
    ConcurrencyConflict,
    DocumentExists,
    connect_document_store,
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
