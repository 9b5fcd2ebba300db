"""Every store call counted on /metrics: calls (round trips) and the documents they touch.

What a delivery costs a datastore is what it costs on Cosmos DB, where each document read
or written is billed in request units whatever the batching: `store_documents_total`
divided by deliveries is that bill's shape, `store_calls_total` the round trips a batch
saves. tests/benchmarks/store_costs.py turns them into request units per delivery.

The calls whose count is known before the call are counted and handed on: they return the
store's own awaitable rather than awaiting it in a coroutine of their own, so a call's
every resumption does not pass through one more frame (a booking resumes its call chain
at each round trip).
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any

from chassis.documents import JSON, Document, DocumentExists, DocumentStore
from chassis.metrics import store_tally

OPERATIONS = ("read", "write", "delete", "query")


class MeteredStore:
    """A DocumentStore that counts, per collection and operation, each call and each
    document it reads, writes or deletes (a miss counts as a read)."""

    def __init__(self, store: DocumentStore, collection: str) -> None:
        self._store = store
        self._read, self._write, self._delete, self._query = (
            store_tally(collection, op) for op in OPERATIONS
        )

    def get(self, id: str) -> Coroutine[Any, Any, Document | None]:
        self._read[0] += 1
        self._read[1] += 1
        return self._store.get(id)

    def get_many(self, ids: Sequence[str]) -> Coroutine[Any, Any, dict[str, Document]]:
        self._read[0] += 1
        self._read[1] += len(ids)
        return self._store.get_many(ids)

    def create(self, id: str, body: JSON) -> Coroutine[Any, Any, Document]:
        self._write[0] += 1
        self._write[1] += 1
        return self._store.create(id, body)

    def create_many(
        self, items: Sequence[tuple[str, JSON]]
    ) -> Coroutine[Any, Any, list[Document | DocumentExists]]:
        self._write[0] += 1
        self._write[1] += len(items)
        return self._store.create_many(items)

    def replace(self, id: str, body: JSON, *, etag: str) -> Coroutine[Any, Any, Document]:
        self._write[0] += 1
        self._write[1] += 1
        return self._store.replace(id, body, etag=etag)

    def upsert(self, id: str, body: JSON) -> Coroutine[Any, Any, Document]:
        self._write[0] += 1
        self._write[1] += 1
        return self._store.upsert(id, body)

    def delete(self, id: str, *, etag: str | None = None) -> Coroutine[Any, Any, bool]:
        self._delete[0] += 1
        self._delete[1] += 1
        return self._store.delete(id, etag=etag)

    async def find(self, **where: str | int | bool) -> list[Document]:
        found = await self._store.find(**where)
        self._query[0] += 1
        self._query[1] += len(found)
        return found

    async def versions(self) -> dict[str, str]:
        listed = await self._store.versions()
        self._query[0] += 1
        self._query[1] += len(listed)
        return listed

    def ping(self) -> Coroutine[Any, Any, None]:
        return self._store.ping()

    def close(self) -> Coroutine[Any, Any, None]:
        return self._store.close()
