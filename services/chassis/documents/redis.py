"""Documents in Redis: a hash per document, a set per indexed value, Lua for atomicity.

Keys of a collection `c`:
  {c}:doc:<id>                 hash {body: JSON, etag, idx: JSON list of the index keys it is in}
  {c}:idx:<field>:<value>      set of ids whose body has that field equal to that value
  {c}:ids                      set of all ids, so find() with no filter needs no SCAN

The braces are a Redis Cluster hash tag: a collection's keys share one slot, so its
scripts stay valid on a clustered server. An index is keyed by a value's JSON text, like
PostgreSQL's `body->>'field'` (True is "true", 5 is "5"); `find` then also compares JSON
types on the fetched bodies, so True matches true but not 1, and "5" not 5.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chassis import jsoncodec
from chassis.documents import (
    JSON,
    Collection,
    ConcurrencyConflict,
    Document,
    DocumentExists,
    DocumentNotFound,
    created_or_exists,
    new_etag,
)
from chassis.settings import read_secret
from chassis.startup import connect_retrying

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 30.0
# Includes BusyLoadingError: the server is up but still loading its dataset.
_NOT_READY = (OSError, RedisConnectionError, RedisTimeoutError)

# KEYS: doc, ids, then the index keys of the new body.
# ARGV: mode (create|replace|upsert), expected etag, body, new etag, id, new index keys (JSON).
# The old index keys come from the stored hash, so they are removed exactly, whatever
# the indexed fields were when the document was written.
_WRITE = """
local doc, ids = KEYS[1], KEYS[2]
local mode, expected, body, etag, id, idx = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local current = redis.call('HGET', doc, 'etag')
if mode == 'create' and current then return 'exists' end
if mode == 'replace' then
  if not current then return 'missing' end
  if current ~= expected then return 'conflict' end
end
if current then
  for _, key in ipairs(cjson.decode(redis.call('HGET', doc, 'idx'))) do
    redis.call('SREM', key, id)
  end
end
redis.call('HSET', doc, 'body', body, 'etag', etag, 'idx', idx)
redis.call('SADD', ids, id)
for i = 3, #KEYS do redis.call('SADD', KEYS[i], id) end
return 'ok'
"""

# KEYS: doc, ids. ARGV: id, check ('1' to compare etags), expected etag.
_DELETE = """
local doc, ids = KEYS[1], KEYS[2]
local id, check, expected = ARGV[1], ARGV[2], ARGV[3]
local current = redis.call('HGET', doc, 'etag')
if not current then return 'missing' end
if check == '1' and current ~= expected then return 'conflict' end
for _, key in ipairs(cjson.decode(redis.call('HGET', doc, 'idx'))) do
  redis.call('SREM', key, id)
end
redis.call('DEL', doc)
redis.call('SREM', ids, id)
return 'ok'
"""


def _as_json(value: object) -> tuple[str, str] | None:
    """A scalar's JSON type and text; None for what equality on a scalar can't match."""
    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, int | float):
        return "number", str(value)
    if isinstance(value, str):
        return "string", value
    return None


class RedisDocumentStore:
    def __init__(self, client: aioredis.Redis, collection: Collection) -> None:
        self._redis = client
        self._tag = "{" + collection.name + "}"
        self._ids = f"{self._tag}:ids"
        self._indexed = tuple(collection.indexed)
        self._write_script = client.register_script(_WRITE)
        self._delete_script = client.register_script(_DELETE)

    @classmethod
    async def connect(cls, url: str, collection: Collection) -> RedisDocumentStore:
        parts = urlsplit(url)
        where = f"{parts.hostname}:{parts.port or 6379}"

        # Azure Cache for Redis takes an access key; on AKS it comes as a Key Vault CSI file.
        password = read_secret(
            os.environ.get("REDIS_PASSWORD", ""), os.environ.get("REDIS_PASSWORD_FILE", "")
        )
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5.0,
            password=password or None,  # a password in the URL still wins
        )
        try:
            async for attempt in connect_retrying(
                f"Redis at {where}", retry_on=_NOT_READY, within=CONNECT_TIMEOUT_SECONDS
            ):
                with attempt:
                    await client.ping()
        except BaseException:
            await client.aclose()
            raise
        return cls(client, collection)

    def _doc_key(self, id: str) -> str:
        return f"{self._tag}:doc:{id}"

    def _index_key(self, field: str, text: str) -> str:
        return f"{self._tag}:idx:{field}:{text}"

    async def get(self, id: str) -> Document | None:
        body, etag = await self._redis.hmget(self._doc_key(id), ["body", "etag"])
        return None if body is None else Document(id, jsoncodec.loads(body), cast(str, etag))

    def _write_call(
        self, mode: str, id: str, body: JSON, etag: str, expected: str = ""
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the write script for one document."""
        index_keys = [
            self._index_key(f, scalar[1])
            for f in self._indexed
            if (scalar := _as_json(body.get(f))) is not None
        ]
        keys = [self._doc_key(id), self._ids, *index_keys]
        # ensure_ascii=False: Lua's cjson then sees the keys' exact UTF-8 bytes.
        args = [mode, expected, jsoncodec.dumps(body), etag, id]
        return keys, [*args, json.dumps(index_keys, ensure_ascii=False)]

    async def _write(self, mode: str, id: str, body: JSON, expected: str = "") -> Document:
        etag = new_etag()
        keys, args = self._write_call(mode, id, body, etag, expected)
        outcome = await self._write_script(keys=keys, args=args)
        if outcome == "exists":
            raise DocumentExists(id)
        if outcome == "missing":
            raise DocumentNotFound(id)
        if outcome == "conflict":
            raise ConcurrencyConflict(id)
        return Document(id, body, etag)

    async def create(self, id: str, body: JSON) -> Document:
        return await self._write("create", id, body)

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        return {doc.id: doc for doc in await self._fetch(dict.fromkeys(ids))}

    async def create_many(
        self, items: Sequence[tuple[str, JSON]]
    ) -> list[Document | DocumentExists]:
        # One pipeline: one round trip; each script atomic on its own, run in order, so an
        # id given twice is created by its first item and exists for the next.
        etags = [new_etag() for _ in items]
        calls = [
            self._write_call("create", id, body, etags[n]) for n, (id, body) in enumerate(items)
        ]
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await self._write_script(keys=keys, args=args, client=pipe)
            outcomes: list[str] = await pipe.execute()
        return created_or_exists(
            items, {n: etags[n] for n, outcome in enumerate(outcomes) if outcome == "ok"}
        )

    async def replace(self, id: str, body: JSON, *, etag: str) -> Document:
        return await self._write("replace", id, body, expected=etag)

    async def upsert(self, id: str, body: JSON) -> Document:
        return await self._write("upsert", id, body)

    async def delete(self, id: str, *, etag: str | None = None) -> bool:
        outcome = await self._delete_script(
            keys=[self._doc_key(id), self._ids],
            args=[id, "0" if etag is None else "1", etag or ""],
        )
        if outcome == "conflict":
            raise ConcurrencyConflict(id)
        return bool(outcome == "ok")

    async def find(self, **where: str | int | bool) -> list[Document]:
        wanted = {f: _as_json(v) for f, v in where.items()}
        index_keys = [
            self._index_key(f, scalar[1])
            for f, scalar in wanted.items()
            if f in self._indexed and scalar is not None
        ]
        if index_keys:
            ids = await self._redis.sinter(index_keys)
        else:
            ids = await self._redis.smembers(self._ids)
        # Checked again on the fetched bodies: non-indexed fields and JSON types are
        # filtered only here, and a document may have changed since the index was read.
        return [
            doc
            for doc in await self._fetch(sorted(cast(set[str], ids)))  # decode_responses=True
            if all(_as_json(doc.body.get(f)) == scalar for f, scalar in wanted.items())
        ]

    async def _fetch(self, ids: Iterable[str]) -> list[Document]:
        ids = list(ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for id in ids:
                pipe.hmget(self._doc_key(id), ["body", "etag"])
            rows: list[list[Any]] = await pipe.execute()
        return [
            Document(id, jsoncodec.loads(body), etag)
            for id, (body, etag) in zip(ids, rows, strict=True)
            if body is not None  # deleted since the id was read
        ]

    async def versions(self) -> dict[str, str]:
        ids = sorted(cast(set[str], await self._redis.smembers(self._ids)))
        async with self._redis.pipeline(transaction=False) as pipe:
            for id in ids:
                pipe.hget(self._doc_key(id), "etag")
            etags: list[str | None] = await pipe.execute()
        return {id: etag for id, etag in zip(ids, etags, strict=True) if etag is not None}

    async def ping(self) -> None:
        await self._redis.ping()

    async def drop(self) -> None:
        """Delete every key of the collection (tests and tear-down; SCAN, so not hot-path)."""
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=f"{self._tag}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self._redis.unlink(*batch)
                batch.clear()
        if batch:
            await self._redis.unlink(*batch)

    async def close(self) -> None:
        await self._redis.aclose()
