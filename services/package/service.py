"""Use cases over the package store. Every write is idempotent: workflow may repeat it.

Package ids are the clients' own names ("mypackage"), so they are kept per owner: two owners
who use the same id have two packages. A package written by an older request (a late
redelivery) does not overwrite what a newer one wrote: writes carry the time ingestion
accepted their request.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from chassis.documents import Collection, DocumentExists, DocumentStore
from chassis.documents.updates import update_with_retry
from package.schemas import Package, PackagePatch, PackageSummary, PackageUpsert

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


async def upsert(*, store: DocumentStore, package_id: str, data: PackageUpsert) -> bool:
    """Create or update the package; True if it was created."""
    id = document_id(package_id, data.ownerId)
    body = {**data.model_dump(mode="json", exclude_none=True), "packageId": package_id}
    # Created first, read only if it exists: a new package (nearly all) costs one call.
    try:
        await store.create(id, body)
        return True
    except DocumentExists:
        pass

    def newer(existing: dict[str, Any]) -> dict[str, Any] | None:
        return None if _is_older(data.requestedAt, existing) else body

    if await update_with_retry(store, id, newer) is None:  # deleted meanwhile
        await store.upsert(id, body)
    return False


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
