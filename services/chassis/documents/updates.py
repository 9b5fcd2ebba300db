"""Changing a document on what was read of it: the optimistic-update loop, written once.

Read the document, work out its new body, write it only if its ETag is still the one read;
if another writer got there first, read again and work it out anew. The change is a pure
function of the body read (it may raise to refuse), so running it again on a newer body is
always right. The attempts are bounded, one policy for every service: past them the
contention is not going to end by itself, and the caller's retry (a 503, a redelivery) is
the better wait.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chassis.documents import ConcurrencyConflict, DocumentStore

UPDATE_ATTEMPTS = 20

Body = dict[str, Any]
Change = Callable[[Body], Body | None]


async def update_with_retry(
    store: DocumentStore, id: str, change: Change, *, attempts: int = UPDATE_ATTEMPTS
) -> Body | None:
    """Apply `change` to document `id` with optimistic concurrency; return its body as it
    now stands, or None if there is no such document (`change` is then not called). A
    change that returns None, or the body unchanged, writes nothing. ConcurrencyConflict
    after `attempts` lost races."""
    for _ in range(attempts):
        doc = await store.get(id)
        if doc is None:
            return None
        new = change(doc.body)
        if new is None or new == doc.body:
            return doc.body
        try:
            await store.replace(id, new, etag=doc.etag)
            return new
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(id)
