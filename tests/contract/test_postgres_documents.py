"""What only the PostgreSQL store promises, beyond the shared contract."""

from __future__ import annotations

import uuid

import asyncpg

from chassis.documents import Collection
from chassis.documents.postgres import PostgresDocumentStore
from tests import servers


async def test_large_bodies_are_compressed_with_lz4() -> None:
    url = servers.need_server("postgres")
    collection = Collection(name=f"contract_{uuid.uuid4().hex[:12]}")
    store = await PostgresDocumentStore.connect(url, collection)
    conn = await asyncpg.connect(url)
    try:
        # A drone's schedule: rows of numbers, large enough for the server to compress.
        await store.create("d1", {"schedule": [[f"d{i}", i, i * 1.5] for i in range(2000)]})
        method = await conn.fetchval(
            f'SELECT pg_column_compression(body) FROM "{collection.name}" WHERE id = $1', "d1"
        )
        assert method == "lz4"
    finally:
        await conn.close()
        await store.drop()
        await store.close()
