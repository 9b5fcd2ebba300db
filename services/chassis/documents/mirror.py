"""A reader's copy of a collection: each document parsed once per version.

A view that shows a whole collection at every refresh (the console's fleet and deliveries)
would otherwise decode every document every time, though few change between two reads. The
mirror asks the store for ids and ETags only (`versions`), reads again just the documents
whose ETag changed, and parses those; most of a refresh is then a dictionary lookup. It is
filled when read and does nothing in between: no background work, nothing while unread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from chassis.documents import JSON, DocumentStore

T = TypeVar("T")


class DocumentMirror(Generic[T]):
    def __init__(self, parse: Callable[[str, JSON], T]) -> None:
        self._parse = parse
        self._store: DocumentStore | None = None
        self._known: dict[str, tuple[str, T]] = {}

    async def read(self, store: DocumentStore) -> dict[str, T]:
        """Every document now, parsed, by id."""
        if store is not self._store:  # another store (an app made again): start afresh
            self._store, self._known = store, {}
        versions = await store.versions()
        stale = [id for id, etag in versions.items() if self._known.get(id, ("",))[0] != etag]
        if len(stale) > len(versions) // 4:  # the first read, or much changed: one query
            self._known = {d.id: (d.etag, self._parse(d.id, d.body)) for d in await store.find()}
        else:
            for id in self._known.keys() - versions.keys():
                del self._known[id]
            for id in stale:
                doc = await store.get(id)
                if doc is None:
                    self._known.pop(id, None)
                else:
                    self._known[id] = (doc.etag, self._parse(id, doc.body))
        return {id: parsed for id, (_, parsed) in self._known.items()}
