"""Drone documents whose long schedules are kept in pages, so that a booking writes what it
changed, not the drone's whole future.

A drone's document (its head) holds where it is, its fences, and the tail of its schedule:
the latest windows, where most bookings go. Once the tail grows past twice PAGE windows, all
but the last PAGE of it become pages: documents of their own, in another collection, each
written once and never changed. A booking or a cancel in a paged part of the schedule writes
that one page anew under a new id (models.Page loses its id when its windows change), then
the head naming it; the head's ETag decides between writers as before, so a page written
for a head write that then fails is never part of the drone. Pages the head no longer names
are deleted after it is written; one left behind by a crash is only storage.

To the scheduler this is a DocumentStore like any other: a drone read through it has its
whole schedule in its body (`schedule`, with `pages` saying which windows are in which
page), and a drone written through it is split. A drone with no pages is stored exactly as
before this module, so documents written by older releases read as they are; a head with
pages has no `schedule` field, so a replica of an older release fails on it rather than
plan on a part of the schedule (see the upgrade note in CHANGELOG.md). With `page` 0 no
pages are made, and a paged drone written is stored whole again.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from chassis.documents import (
    JSON,
    Collection,
    ConcurrencyConflict,
    Document,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    StoreError,
)

PAGES = Collection(name="drone_pages", partition_key="id")
# A head read whose pages were replaced meanwhile is read again, this many times at most.
MAX_REREADS = 20
# Pages read in one call when the fleet is listed: a large fleet's are many thousands.
READ_PAGES_AT_ONCE = 500


class PagedDrones:
    """The drones collection, with the windows of long schedules in `pages`."""

    def __init__(self, heads: DocumentStore, pages: DocumentStore, *, page: int) -> None:
        self.heads, self.pages, self.page = heads, pages, page
        # Per drone, the pages its head named at an ETag this process read or wrote: which
        # to delete once a newer head no longer names them (a miss only leaves storage).
        self._named: dict[str, tuple[str, frozenset[str]]] = {}
        self._deleting: set[asyncio.Task[None]] = set()

    async def get(self, id: str) -> Document | None:
        for _ in range(MAX_REREADS):
            head = await self.heads.get(id)
            if head is None:
                return None
            with contextlib.suppress(_PageGone):
                return (await self._whole([head]))[0]
        raise StoreError(f"drone {id}: its pages keep changing while read")

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        return await self._read(list((await self.heads.get_many(ids)).values()))

    async def find(self, **where: str | int | bool) -> list[Document]:
        return list((await self._read(await self.heads.find(**where))).values())

    async def versions(self) -> dict[str, str]:
        return await self.heads.versions()

    # The writes hand on _store's coroutine rather than await it in one of their own: one
    # frame fewer to resume at each of a booking's round trips (as chassis' MeteredStore).
    def create(self, id: str, body: JSON) -> Coroutine[Any, Any, Document]:
        return self._store(id, body, lambda head: self.heads.create(id, head), None)

    def replace(self, id: str, body: JSON, *, etag: str) -> Coroutine[Any, Any, Document]:
        return self._store(id, body, lambda head: self.heads.replace(id, head, etag=etag), etag)

    def upsert(self, id: str, body: JSON) -> Coroutine[Any, Any, Document]:
        return self._store(id, body, lambda head: self.heads.upsert(id, head), None)

    async def delete(self, id: str, *, etag: str | None = None) -> bool:
        head = await self.heads.get(id)
        deleted = await self.heads.delete(id, etag=etag)
        if deleted and head is not None:
            await self._delete_pages(set(_named_in(head.body)))
        return deleted

    async def create_many(
        self, items: Sequence[tuple[str, JSON]]
    ) -> list[Document | DocumentExists]:
        created: list[Document | DocumentExists] = []
        for id, body in items:  # drones are created once each, at start-up
            try:
                created.append(await self.create(id, body))
            except DocumentExists as e:
                created.append(e)
        return created

    async def ping(self) -> None:
        await self.heads.ping()
        await self.pages.ping()

    async def close(self) -> None:
        """Closes both stores, once the pages being deleted are (a bounded wait)."""
        if self._deleting:
            await asyncio.wait(self._deleting, timeout=10)
        await self.heads.close()
        await self.pages.close()

    def _split(self, id: str, body: JSON) -> tuple[JSON, list[tuple[str, JSON]]]:
        """The head to write for the drone `body`, and the new pages to write before it."""
        rows: list[Any] = body["schedule"]
        where = {k: v for k, v in body.items() if k not in ("schedule", "pages")}
        if not self.page:
            return {**where, "schedule": rows}, []
        layout: list[list[Any]] = []  # [page id, skip, count] each
        new: list[tuple[str, JSON]] = []
        at = 0

        def page_of(windows: list[Any]) -> None:
            page_id = f"{id}.{secrets.token_hex(8)}"
            new.append((page_id, {"droneId": id, "windows": windows}))
            layout.append([page_id, 0, len(windows)])

        for page_id, skip, count in body.get("pages", ()):
            if page_id is None:  # changed: written anew, split once it is twice too long
                for a, b in _chunks(at, at + count, self.page):
                    page_of(rows[a:b])
            else:
                layout.append([page_id, skip, count])
            at += count
        if len(rows) - at > 2 * self.page:  # the tail is long: all but its last PAGE go
            for a, b in _chunks(at, len(rows) - self.page, self.page):
                page_of(rows[a:b])
            at = len(rows) - self.page
        if not layout:
            return {**where, "schedule": rows}, []
        return {**where, "tail": rows[at:], "pages": layout}, new

    async def _write_pages(self, new: list[tuple[str, JSON]]) -> None:
        if not new:
            return
        for created in await self.pages.create_many(new):
            if isinstance(created, DocumentExists):  # ids are random: never in practice
                raise created

    async def _store(
        self,
        id: str,
        body: JSON,
        write: Callable[[JSON], Awaitable[Document]],
        etag: str | None,
    ) -> Document:
        """The drone `body` written: its new pages, then its head (by `write`), then the
        pages its head at `etag` named and the new one does not are deleted. Returns the
        drone as written, its new pages named."""
        head, new = self._split(id, body)
        await self._write_pages(new)
        try:
            written = await write(head)
        except (ConcurrencyConflict, DocumentNotFound, DocumentExists):
            await self._drop_unless_named(id, new)
            raise
        named = frozenset(_named_in(head))
        known = self._named.get(id)
        self._named[id] = (written.etag, named)
        if etag is not None and known is not None and known[0] == etag and known[1] - named:
            self._forget_later(known[1] - named)
        whole = {k: v for k, v in body.items() if k != "pages"}
        if "pages" in head:
            whole["pages"] = head["pages"]
        return Document(id, whole, written.etag)

    def _forget_later(self, gone: frozenset[str]) -> None:
        # Not awaited by the booking: the drone is written, these are only storage.
        task = asyncio.get_running_loop().create_task(self._delete_pages(set(gone)))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)

    async def _drop_unless_named(self, id: str, new: list[tuple[str, JSON]]) -> None:
        """After a head write that failed: its new pages, unless the head names them after
        all (a write retried after its answer was lost fails on the ETag it changed)."""
        if new:
            head = await self.heads.get(id)
            named = set(_named_in(head.body)) if head is not None else set()
            await self._delete_pages({p for p, _ in new} - named)

    async def _delete_pages(self, ids: set[str]) -> None:
        for page_id in sorted(ids):
            # Left behind, a page is only storage: no failure here fails the drone's write.
            with contextlib.suppress(Exception):
                await self.pages.delete(page_id)

    async def _read(self, heads: list[Document]) -> dict[str, Document]:
        """Whole drones for `heads`: their pages read in one call, and a drone whose pages
        were replaced meanwhile read again on its own."""
        try:
            return {d.id: d for d in await self._whole(heads)}
        except _PageGone:
            pass
        whole: dict[str, Document] = {}
        for head in heads:
            doc = await self.get(head.id)
            if doc is not None:
                whole[doc.id] = doc
        return whole

    async def _whole(self, heads: list[Document]) -> list[Document]:
        wanted = sorted({p for h in heads for p in _named_in(h.body)})
        pages: dict[str, Document] = {}
        for start in range(0, len(wanted), READ_PAGES_AT_ONCE):
            pages.update(await self.pages.get_many(wanted[start : start + READ_PAGES_AT_ONCE]))
        whole = []
        for head in heads:
            body = head.body
            if "tail" not in body:
                whole.append(head)  # not paged: as older releases wrote it too
                continue
            rows: list[Any] = []
            for page_id, skip, count in body["pages"]:
                page = pages.get(page_id)
                if page is None:
                    raise _PageGone(page_id)
                rows += page.body["windows"][skip : skip + count]
            rows += body["tail"]
            drone = {k: v for k, v in body.items() if k != "tail"}
            drone["schedule"] = rows
            self._named[head.id] = (head.etag, frozenset(_named_in(body)))
            whole.append(Document(head.id, drone, head.etag))
        return whole


class _PageGone(Exception):
    """A page the head named is gone: the head was replaced since it was read."""


def _named_in(body: JSON) -> list[str]:
    return [p for p, _, _ in body.get("pages", ()) if p is not None] if "tail" in body else []


def _chunks(start: int, stop: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) in pieces of `size`, the last one taking what is left over."""
    bounds = list(range(start, stop, size))
    if len(bounds) > 1 and stop - bounds[-1] < size:
        bounds.pop()
    return list(zip(bounds, [*bounds[1:], stop], strict=True))
