"""A JSON document store with optimistic concurrency, chosen by URL.

Every service keeps its state as documents: a JSON object under an id, versioned by an ETag.
The same interface runs embedded (SQLite), on open-source servers (PostgreSQL, Redis) and
on Azure (Cosmos DB), so a service changes footing by configuration alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

JSON = dict[str, Any]
# What a collection or field may be called: safe as an SQL identifier and a Redis key part.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Document:
    id: str
    body: JSON
    etag: str


@dataclass(frozen=True)
class Collection:
    """Where a service's documents live and how they are looked up.

    `name` is a table (SQLite, PostgreSQL), a key prefix (Redis) or a container (Cosmos DB).
    `indexed` names top-level fields that `find` filters on; stores index them.
    `partition_key` is the top-level field Cosmos DB partitions by (see docs in cosmos.py).
    """

    name: str
    indexed: Sequence[str] = field(default_factory=tuple)
    partition_key: str = "id"

    def __post_init__(self) -> None:
        # Names become table, key and field names in every store: checked once, here.
        for name in (self.name, self.partition_key, *self.indexed):
            if not NAME.match(name):
                raise ValueError(f"not a valid collection or field name: {name!r}")


class StoreError(Exception):
    """Base of the errors a store raises for the caller to act on."""


class DocumentNotFound(StoreError):
    pass


class DocumentExists(StoreError):
    pass


class ConcurrencyConflict(StoreError):
    """The document changed since it was read (its ETag no longer matches)."""


class DocumentStore(Protocol):
    async def get(self, id: str) -> Document | None: ...

    async def create(self, id: str, body: JSON) -> Document:
        """Insert a new document; DocumentExists if the id is taken."""
        ...

    async def replace(self, id: str, body: JSON, *, etag: str) -> Document:
        """Overwrite only if unchanged since read; DocumentNotFound or ConcurrencyConflict."""
        ...

    async def upsert(self, id: str, body: JSON) -> Document:
        """Create or overwrite unconditionally (last writer wins)."""
        ...

    async def delete(self, id: str, *, etag: str | None = None) -> bool:
        """True if a document was deleted; ConcurrencyConflict if `etag` no longer matches."""
        ...

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        """The documents of those ids that exist, by id: one round trip where the store
        allows (a batch of workflow's calls reads its documents together)."""
        ...

    async def create_many(
        self, items: Sequence[tuple[str, JSON]]
    ) -> list[Document | DocumentExists]:
        """Insert each (id, body) that is new, in one round trip where the store allows. Per
        item, in order, its document or DocumentExists, each judged on its own as `create`
        would: one item's conflict does not stop the others. An id given twice is created
        by its first item."""
        ...

    async def find(self, **where: str | int | bool) -> list[Document]:
        """Documents whose top-level fields equal the given values (all of them with none)."""
        ...

    async def versions(self) -> dict[str, str]:
        """Every document's id and ETag, without the bodies: a reader that keeps documents
        can fetch just the ones that changed."""
        ...

    async def ping(self) -> None:
        """Raise if the server cannot be reached (used by readiness of the store itself)."""
        ...

    async def close(self) -> None: ...


def new_etag() -> str:
    """A fresh ETag: 128 random bits as 32 hex digits, as uuid4().hex gave, for a tenth of
    the Python calls (every write of every service makes one)."""
    return os.urandom(16).hex()


def first_of_each_id(items: Sequence[tuple[str, JSON]]) -> tuple[list[int], list[int]]:
    """Positions of the items to create (the first of each id) and of those that repeat an
    id given earlier in the batch, which exist by the time their turn comes."""
    seen: set[str] = set()
    first: list[int] = []
    repeats: list[int] = []
    for n, (id, _) in enumerate(items):
        (repeats if id in seen else first).append(n)
        seen.add(id)
    return first, repeats


def created_or_exists(
    items: Sequence[tuple[str, JSON]], etags: dict[int, str]
) -> list[Document | DocumentExists]:
    """Each item's outcome from the etags of the positions that were created."""
    return [
        Document(id, body, etags[n]) if n in etags else DocumentExists(id)
        for n, (id, body) in enumerate(items)
    ]


async def connect_document_store(url: str, collection: Collection) -> DocumentStore:
    """Open the store named by `url`, creating its table/container idempotently.

    Schemes: sqlite:///path/file.db, postgresql://user@host/db, redis://host:port/db,
    cosmos://account.documents.azure.com/database (Entra ID, or COSMOS_KEY for emulators).
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from chassis.documents.sqlite import SqliteDocumentStore

        return await SqliteDocumentStore.connect(url, collection)
    if scheme in ("postgresql", "postgres"):
        from chassis.documents.postgres import PostgresDocumentStore

        return await PostgresDocumentStore.connect(url, collection)
    if scheme in ("redis", "rediss"):
        from chassis.documents.redis import RedisDocumentStore

        return await RedisDocumentStore.connect(url, collection)
    if scheme == "cosmos":
        from chassis.documents.cosmos import CosmosDocumentStore

        return await CosmosDocumentStore.connect(url, collection)
    raise ValueError(f"unsupported document store URL scheme {scheme!r} in {url!r}")
