"""Documents in an SQLite file: the embedded default, nothing to install."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import aiosqlite

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


def sqlite_path(url: str) -> str:
    """sqlite:///relative/file.db or sqlite:////absolute/file.db, as SQLAlchemy spells them."""
    path = urlsplit(url).path
    path = path[1:] if path.startswith("/") else path
    if path in ("", ":memory:"):
        return ":memory:"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path


async def open_sqlite(url: str) -> aiosqlite.Connection:
    db = await aiosqlite.connect(sqlite_path(url), isolation_level=None)
    # WAL lets readers in other processes proceed during writes; NORMAL survives process
    # crashes (the failure we design for), not power loss.
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA busy_timeout=5000")
    return db


# A service's collections in one file share one connection: two connections of one process
# writing the same file can meet SQLite's "database is locked" instead of waiting.
_shared: dict[str, tuple[aiosqlite.Connection, int]] = {}


async def _acquire(url: str) -> aiosqlite.Connection:
    path = sqlite_path(url)
    if path in _shared and path != ":memory:":
        db, users = _shared[path]
        _shared[path] = (db, users + 1)
        return db
    db = await open_sqlite(url)
    _shared[path] = (db, 1)
    return db


async def _release(db: aiosqlite.Connection) -> None:
    for path, (shared, users) in list(_shared.items()):
        if shared is db:
            if users > 1:
                _shared[path] = (shared, users - 1)
                return
            del _shared[path]
    await db.close()


# Bound parameters in one statement: well under SQLite's limit (32,766 since 3.32).
MAX_VARIABLES = 900


def _text(body: JSON) -> str:
    # Text, not bytes: SQLite keeps bytes as a BLOB, which its JSON functions do not read.
    return jsoncodec.dumps(body).decode()


class SqliteDocumentStore:
    def __init__(self, db: aiosqlite.Connection, collection: Collection) -> None:
        self._db = db
        self._table = collection.name
        self._indexed = set(collection.indexed)

    @classmethod
    async def connect(cls, url: str, collection: Collection) -> SqliteDocumentStore:
        db = await _acquire(url)
        t = collection.name
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS {t}"
            " (id TEXT PRIMARY KEY, body TEXT NOT NULL, etag TEXT NOT NULL)"
        )
        for f in collection.indexed:
            await db.execute(
                f"CREATE INDEX IF NOT EXISTS ix_{t}_{f} ON {t} (json_extract(body, '$.{f}'))"
            )
        return cls(db, collection)

    async def get(self, id: str) -> Document | None:
        async with self._db.execute(
            f"SELECT body, etag FROM {self._table} WHERE id = ?", (id,)
        ) as c:
            row = await c.fetchone()
        return None if row is None else Document(id, jsoncodec.loads(row[0]), row[1])

    async def create(self, id: str, body: JSON) -> Document:
        etag = new_etag()
        try:
            await self._db.execute(
                f"INSERT INTO {self._table} (id, body, etag) VALUES (?, ?, ?)",
                (id, _text(body), etag),
            )
        except aiosqlite.IntegrityError as e:
            raise DocumentExists(id) from e
        return Document(id, body, etag)

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Document] = {}
        for start in range(0, len(wanted), MAX_VARIABLES):
            chunk = wanted[start : start + MAX_VARIABLES]
            marks = ", ".join("?" * len(chunk))
            async with self._db.execute(
                f"SELECT id, body, etag FROM {self._table} WHERE id IN ({marks})", chunk
            ) as c:
                for r in await c.fetchall():
                    found[r[0]] = Document(r[0], jsoncodec.loads(r[1]), r[2])
        return found

    async def create_many(
        self, items: Sequence[tuple[str, JSON]]
    ) -> list[Document | DocumentExists]:
        # One statement per chunk: one commit, each row judged by its own conflict. (Not a
        # transaction over several: the connection is shared by the process's collections,
        # and another coroutine's statement would run inside it.)
        first, _ = first_of_each_id(items)
        etags = {n: new_etag() for n in first}
        rows = [(items[n][0], _text(items[n][1]), etags[n]) for n in first]
        created: set[str] = set()
        per_chunk = MAX_VARIABLES // 3
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start : start + per_chunk]
            values = ", ".join("(?, ?, ?)" for _ in chunk)
            async with self._db.execute(
                f"INSERT INTO {self._table} (id, body, etag) VALUES {values} "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                [v for row in chunk for v in row],
            ) as c:
                created.update(r[0] for r in await c.fetchall())
        return created_or_exists(items, {n: e for n, e in etags.items() if items[n][0] in created})

    async def replace(self, id: str, body: JSON, *, etag: str) -> Document:
        new = new_etag()
        cur = await self._db.execute(
            f"UPDATE {self._table} SET body = ?, etag = ? WHERE id = ? AND etag = ?",
            (_text(body), new, id, etag),
        )
        if cur.rowcount == 0:
            if await self.get(id) is None:
                raise DocumentNotFound(id)
            raise ConcurrencyConflict(id)
        return Document(id, body, new)

    async def upsert(self, id: str, body: JSON) -> Document:
        etag = new_etag()
        await self._db.execute(
            f"INSERT INTO {self._table} (id, body, etag) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body, etag = excluded.etag",
            (id, _text(body), etag),
        )
        return Document(id, body, etag)

    async def delete(self, id: str, *, etag: str | None = None) -> bool:
        if etag is None:
            cur = await self._db.execute(f"DELETE FROM {self._table} WHERE id = ?", (id,))
            return cur.rowcount > 0
        cur = await self._db.execute(
            f"DELETE FROM {self._table} WHERE id = ? AND etag = ?", (id, etag)
        )
        if cur.rowcount == 0:
            if await self.get(id) is None:
                return False
            raise ConcurrencyConflict(id)
        return True

    async def find(self, **where: str | int | bool) -> list[Document]:
        clauses, params = [], []
        for f, value in where.items():
            if not NAME.match(f):
                raise ValueError(f"not a valid field name: {f!r}")
            clauses.append(f"json_extract(body, '$.{f}') = ?")
            params.append(value)
        sql = f"SELECT id, body, etag FROM {self._table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        async with self._db.execute(sql, params) as c:
            rows = await c.fetchall()
        return [Document(r[0], jsoncodec.loads(r[1]), r[2]) for r in rows]

    async def versions(self) -> dict[str, str]:
        async with self._db.execute(f"SELECT id, etag FROM {self._table}") as c:
            return {r[0]: r[1] for r in await c.fetchall()}

    async def ping(self) -> None:
        await self._db.execute("SELECT 1")

    async def close(self) -> None:
        await _release(self._db)
