"""What only the PostgreSQL store promises, beyond the shared contract."""

from __future__ import annotations

import asyncio
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


async def test_replicas_starting_at_once_both_create_their_missing_database() -> None:
    # Two replicas of one service start together and both find the database missing.
    server = servers.need_server("postgres").rsplit("/", 1)[0]
    name = f"contract_{uuid.uuid4().hex[:12]}"
    collection = Collection(name="documents")
    stores: list[PostgresDocumentStore] = []
    try:
        for _ in range(3):  # a race is not sure to happen at once: try it a few times
            stores += await asyncio.gather(
                *(PostgresDocumentStore.connect(f"{server}/{name}", collection) for _ in range(4))
            )
            for store in stores:
                await store.close()
            stores.clear()
            admin = await asyncpg.connect(f"{server}/postgres")
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
    finally:
        for store in stores:
            await store.close()
