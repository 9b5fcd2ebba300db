"""Documents in PostgreSQL: a table per collection, the body as jsonb.

`find` compares a field's JSON text (`body->>'field'`, which each indexed field has an
expression index on) and its JSON type, so True matches true but not 1, and "5" not 5.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from chassis import jsoncodec
from chassis.documents import (
    JSON,
    NAME,
    Collection,
    ConcurrencyConflict,
    Document,
    DocumentExists,
    DocumentNotFound,
    created_or_exists,
    first_of_each_id,
    new_etag,
)
from chassis.startup import connect_retrying

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 30.0
# Server not listening yet, or listening but still starting or recovering.
_NOT_READY = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
)


def _as_json(value: str | int | bool) -> tuple[str, str]:
    """What `jsonb_typeof(body->'field')` and `body->>'field'` yield for this value."""
    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, int):
        return "number", str(value)
    return "string", value


_JSONB_VERSION = b"\x01"  # jsonb's binary form: a version byte, then the JSON text


def _encode_jsonb(encoded: bytes) -> bytes:
    return _JSONB_VERSION + encoded


def _decode_jsonb(data: bytes) -> Any:
    return jsoncodec.loads(data[1:])


async def _init_connection(conn: Any) -> None:
    # Binary: the JSON goes to the server as the bytes encoded, not through a str. Bodies are
    # encoded by the store (jsoncodec.dumps), so that what cannot be stored raises there.
    await conn.set_type_codec(
        "jsonb",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        schema="pg_catalog",
        format="binary",
    )


async def _create_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not NAME.match(name):
        raise ValueError(f"not a valid database name: {name!r}")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")), timeout=5.0)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        log.info("created database %s", name)
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        # Another replica created it first; at the same moment, the catalog's unique index
        # says so instead of CREATE DATABASE.
        pass
    finally:
        await admin.close()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset: the store sets no session state, takes no advisory locks and does not
    LISTEN, so asyncpg's default reset (a round trip on every release) buys nothing."""


_POOL: dict[str, Any] = {
    "min_size": 1,
    "max_size": 10,
    "init": _init_connection,
    "reset": _keep_session,
    "timeout": 5.0,
}


class PostgresDocumentStore:
    def __init__(self, pool: Any, collection: Collection) -> None:
        self._pool = pool
        self._table = f'"{collection.name}"'

    @classmethod
    async def connect(cls, url: str, collection: Collection) -> PostgresDocumentStore:
        parts = urlsplit(url)
        where = f"{parts.hostname}:{parts.port or 5432}"

        async for attempt in connect_retrying(
            f"PostgreSQL at {where}", retry_on=_NOT_READY, within=CONNECT_TIMEOUT_SECONDS
        ):
            with attempt:
                try:
                    pool = await asyncpg.create_pool(url, **_POOL)
                except asyncpg.InvalidCatalogNameError:
                    # The service's own database is created on first start, not by hand.
                    await _create_database(url)
                    pool = await asyncpg.create_pool(url, **_POOL)
        try:
            await _create_schema(pool, collection)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, collection)

    async def get(self, id: str) -> Document | None:
        row = await self._pool.fetchrow(f"SELECT body, etag FROM {self._table} WHERE id = $1", id)
        return None if row is None else Document(id, row["body"], row["etag"])

    async def create(self, id: str, body: JSON) -> Document:
        etag = new_etag()
        # ON CONFLICT DO NOTHING rather than catching the violation: no error in the server log.
        status = await self._pool.execute(
            f"INSERT INTO {self._table} (id, body, etag) VALUES ($1, $2, $3) "
            "ON CONFLICT (id) DO NOTHING",
            id,
            jsoncodec.dumps(body),
            etag,
        )
        if status == "INSERT 0 0":
            raise DocumentExists(id)
        return Document(id, body, etag)

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        if not ids:
            return {}
        rows = await self._pool.fetch(
            f"SELECT id, body, etag FROM {self._table} WHERE id = ANY($1::text[])", list(ids)
        )
        return {r["id"]: Document(r["id"], r["body"], r["etag"]) for r in rows}

    async def create_many(
        self, items: Sequence[tuple[str, JSON]]
    ) -> list[Document | DocumentExists]:
        # One statement: one round trip, one commit, each row judged by its own conflict.
        first, _ = first_of_each_id(items)
        if not first:
            return []
        etags = {n: new_etag() for n in first}
        bodies = [jsoncodec.dumps(items[n][1]) for n in first]  # refuses before writing any
        rows = await self._pool.fetch(
            f"INSERT INTO {self._table} (id, body, etag) "
            "SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[]) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            [items[n][0] for n in first],
            bodies,
            [etags[n] for n in first],
        )
        created = {r["id"] for r in rows}
        return created_or_exists(items, {n: e for n, e in etags.items() if items[n][0] in created})

    async def replace(self, id: str, body: JSON, *, etag: str) -> Document:
        new = new_etag()
        status = await self._pool.execute(
            f"UPDATE {self._table} SET body = $3, etag = $4 WHERE id = $1 AND etag = $2",
            id,
            etag,
            jsoncodec.dumps(body),
            new,
        )
        if status == "UPDATE 0":
            if await self.get(id) is None:
                raise DocumentNotFound(id)
            raise ConcurrencyConflict(id)
        return Document(id, body, new)

    async def upsert(self, id: str, body: JSON) -> Document:
        etag = new_etag()
        await self._pool.execute(
            f"INSERT INTO {self._table} (id, body, etag) VALUES ($1, $2, $3) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body, etag = excluded.etag",
            id,
            jsoncodec.dumps(body),
            etag,
        )
        return Document(id, body, etag)

    async def delete(self, id: str, *, etag: str | None = None) -> bool:
        if etag is None:
            status = await self._pool.execute(f"DELETE FROM {self._table} WHERE id = $1", id)
            return bool(status != "DELETE 0")
        status = await self._pool.execute(
            f"DELETE FROM {self._table} WHERE id = $1 AND etag = $2", id, etag
        )
        if status == "DELETE 0":
            if await self.get(id) is None:
                return False
            raise ConcurrencyConflict(id)
        return True

    async def find(self, **where: str | int | bool) -> list[Document]:
        clauses: list[str] = []
        params: list[str] = []
        for f, value in where.items():
            if not NAME.match(f):
                raise ValueError(f"not a valid field name: {f!r}")
            kind, text = _as_json(value)
            params += [text, kind]
            # The field is a literal, not a parameter, so the expression index applies.
            clauses.append(
                f"body->>'{f}' = ${len(params) - 1} AND jsonb_typeof(body->'{f}') = ${len(params)}"
            )
        sql = f"SELECT id, body, etag FROM {self._table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = await self._pool.fetch(sql, *params)
        return [Document(r["id"], r["body"], r["etag"]) for r in rows]

    async def versions(self) -> dict[str, str]:
        rows = await self._pool.fetch(f"SELECT id, etag FROM {self._table}")
        return {r["id"]: r["etag"] for r in rows}

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")

    async def drop(self) -> None:
        await self._pool.execute(f"DROP TABLE IF EXISTS {self._table}")

    async def close(self) -> None:
        await self._pool.close()


async def _create_schema(pool: Any, collection: Collection) -> None:
    t = collection.name
    async with pool.acquire() as conn, conn.transaction():
        # Replicas starting together would race CREATE ... IF NOT EXISTS into a
        # unique violation on the catalog; a lock per table makes them take turns.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"documents:{t}")
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{t}" '
            "(id text PRIMARY KEY, body jsonb NOT NULL, etag text NOT NULL)"
        )
        for f in collection.indexed:
            await conn.execute(
                f'CREATE INDEX IF NOT EXISTS "ix_{t}_{f}" ON "{t}" ((body->>\'{f}\'))'
            )
        await _compress_with_lz4(conn, t)


async def _compress_with_lz4(conn: Any, table: str) -> None:
    """Large bodies (a drone's schedule) are compressed on every write: lz4 costs the
    server about a third less CPU than the default pglz (measured with the assignments
    micro-benchmark). PostgreSQL 14 and later, built with lz4; else the default stays."""
    current = await conn.fetchval(
        "SELECT attcompression FROM pg_attribute "
        "WHERE attrelid = $1::regclass AND attname = 'body'",
        f'"{table}"',
    )
    if current == "l":
        return
    try:
        async with conn.transaction():  # a savepoint: a refusal undoes only the ALTER
            await conn.execute(f'ALTER TABLE "{table}" ALTER COLUMN body SET COMPRESSION lz4')
    except (asyncpg.FeatureNotSupportedError, asyncpg.PostgresSyntaxError) as e:
        log.info("documents of %s keep the default compression: %s", table, e)
