"""Use cases over the package store. Every write is idempotent: workflow may repeat it.

Package ids are the clients' own names ("mypackage"), so they are kept per owner: two owners
who use the same id have two packages. A package written by an older request (a late
redelivery) does not overwrite what a newer one wrote: writes carry the time ingestion
accepted their request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chassis.batches import each_outcome
from chassis.documents import Collection, DocumentExists, DocumentStore
from chassis.documents.updates import update_with_retry
from package.schemas import Package, PackagePatch, PackageSummary, PackageUpsert, PackageWrite

PACKAGES = Collection(name="packages", indexed=("ownerId",), partition_key="id")


def document_id(package_id: str, owner_id: str | None) -> str:
    """The store's id for an owner's package: the client's id as it is for packages without
    an owner (as the original kept them), else derived from both (an owner id may hold any
    character; a document id may not)."""
    if not owner_id:
        return package_id
    digest = hashlib.sha256(f"{owner_id}\n{package_id}".encode()).hexdigest()[:32]
    return f"{package_id[:80]}.{digest}"


def _shown(body: dict[str, Any]) -> Package:
    return Package(
        id=body.get("packageId", ""),
        **{k: body[k] for k in ("size", "weight", "tag", "ownerId") if k in body},
    )


def _stored(package_id: str, data: PackageUpsert) -> dict[str, Any]:
    fields = data.model_dump(mode="json", exclude_none=True, exclude={"packageId"})
    return {**fields, "packageId": package_id}


async def upsert(*, store: DocumentStore, package_id: str, data: PackageUpsert) -> bool:
    """Create or update the package; True if it was created."""
    id = document_id(package_id, data.ownerId)
    body = _stored(package_id, data)
    # Created first, read only if it exists: a new package (nearly all) costs one call.
    try:
        await store.create(id, body)
        return True
    except DocumentExists:
        pass
    await _update(store, id, body, data.requestedAt)
    return False


async def upsert_many(
    *, store: DocumentStore, writes: Sequence[PackageWrite]
) -> list[bool | Exception]:
    """`upsert` of each write, in one store call for the new ones (nearly all): per write,
    True if it was created, False if it was updated, or the error that write met."""
    docs = [(document_id(w.packageId, w.ownerId), _stored(w.packageId, w)) for w in writes]
    created = await store.create_many(docs)

    async def updated(n: int) -> bool:
        if not isinstance(created[n], DocumentExists):
            return True
        id, body = docs[n]
        await _update(store, id, body, writes[n].requestedAt)
        return False

    return await each_outcome([updated(n) for n in range(len(docs))])


async def _update(
    store: DocumentStore, id: str, body: dict[str, Any], requested_at: datetime | None
) -> None:
    def newer(existing: dict[str, Any]) -> dict[str, Any] | None:
        return None if _is_older(requested_at, existing) else body

    if await update_with_retry(store, id, newer) is None:  # deleted meanwhile
        await store.upsert(id, body)


def _is_older(requested_at: datetime | None, body: dict[str, Any]) -> bool:
    known = body.get("requestedAt")
    return (
        requested_at is not None
        and known is not None
        and requested_at < datetime.fromisoformat(known)
    )


async def get(*, store: DocumentStore, package_id: str, owner_id: str | None) -> Package | None:
    doc = await store.get(document_id(package_id, owner_id))
    if doc is None:
        return None
    return _shown({"packageId": package_id, **doc.body})


async def patch(
    *, store: DocumentStore, package_id: str, owner_id: str | None, data: PackagePatch
) -> bool:
    """Apply the given fields; False if there is no such package."""
    id = document_id(package_id, owner_id)
    changes: dict[str, Any] = data.model_dump(mode="json", exclude_unset=True)
    return await update_with_retry(store, id, lambda body: {**body, **changes}) is not None


async def summary(*, store: DocumentStore, owner_id: str) -> PackageSummary:
    docs = await store.find(ownerId=owner_id)
    return PackageSummary(totalWeight=sum(float(d.body["weight"]) for d in docs))
