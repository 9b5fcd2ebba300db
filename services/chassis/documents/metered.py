"""Every store call counted on /metrics: calls (round trips) and the documents they touch.

What a delivery costs a datastore is what it costs on Cosmos DB, where each document read
or written is billed in request units whatever the batching: `store_documents_total`
divided by deliveries is that bill's shape, `store_calls_total` the round trips a batch
saves. tests/benchmarks/store_costs.py turns them into request units per delivery.
"""

from __future__ import annotations

from collections.abc import Sequence

from chassis.documents import JSON, Document, DocumentExists, DocumentStore
from chassis.metrics import STORE_CALLS, STORE_DOCUMENTS

OPERATIONS = ("read", "write", "delete", "query")


class MeteredStore:
    """A DocumentStore that counts, per collection and operation, each call and each
    document it reads, writes or deletes (a miss counts as a read)."""

    def __init__(self, store: DocumentStore, collection: str) -> None:
        self._store = store
        self._calls = {op: STORE_CALLS.labels(collection, op) for op in OPERATIONS}
        self._documents = {op: STORE_DOCUMENTS.labels(collection, op) for op in OPERATIONS}

    def _count(self, op: str, documents: int) -> None:
        self._calls[op].inc()
        self._documents[op].inc(documents)

    async def get(self, id: str) -> Document | None:
        self._count("read", 1)
        return await self._store.get(id)

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        self._count("read", len(ids))
        return await self._store.get_many(ids)

    async def create(self, id: str, body: JSON) -> Document:
        self._count("write", 1)
        return await self._store.create(id, body)

    async def create_many(
        self, items: Sequence[tuple[str, JSON]]
    ) -> list[Document | DocumentExists]:
        self._count("write", len(items))
        return await self._store.create_many(items)

    async def replace(self, id: str, body: JSON, *, etag: str) -> Document:
        self._count("write", 1)
        return await self._store.replace(id, body, etag=etag)

    async def upsert(self, id: str, body: JSON) -> Document:
        self._count("write", 1)
        return await self._store.upsert(id, body)

    async def delete(self, id: str, *, etag: str | None = None) -> bool:
        self._count("delete", 1)
        return await self._store.delete(id, etag=etag)

    async def find(self, **where: str | int | bool) -> list[Document]:
        found = await self._store.find(**where)
        self._count("query", len(found))
        return found

    async def versions(self) -> dict[str, str]:
        listed = await self._store.versions()
        self._count("query", len(listed))
        return listed

    async def ping(self) -> None:
        await self._store.ping()

    async def close(self) -> None:
        await self._store.close()
