"""Use cases over the package store. Every write is idempotent: workflow may repeat it."""

from __future__ import annotations

from typing import Any

from chassis.documents import Collection, ConcurrencyConflict, DocumentExists, DocumentStore
from package.schemas import Package, PackagePatch, PackageSummary, PackageUpsert

PACKAGES = Collection(name="packages", indexed=("ownerId",), partition_key="id")


async def upsert(*, store: DocumentStore, package_id: str, data: PackageUpsert) -> bool:
    """Create or update the package; True if it was created."""
    body = data.model_dump(mode="json")
    # Created first, read only if it exists: a new package (nearly all) costs one call.
    try:
        await store.create(package_id, body)
        return True
    except DocumentExists:
        existing = await store.get(package_id)
    if existing is None or existing.body != body:  # (None: deleted meanwhile)
        await store.upsert(package_id, body)
    return False


async def get(*, store: DocumentStore, package_id: str) -> Package | None:
    doc = await store.get(package_id)
    return None if doc is None else Package(id=doc.id, **doc.body)


async def patch(*, store: DocumentStore, package_id: str, data: PackagePatch) -> bool:
    """Apply the given fields; False if there is no such package."""
    changes: dict[str, Any] = data.model_dump(mode="json", exclude_unset=True)
    for _ in range(10):
        doc = await store.get(package_id)
        if doc is None:
            return False
        try:
            await store.replace(package_id, {**doc.body, **changes}, etag=doc.etag)
            return True
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(package_id)


async def summary(*, store: DocumentStore, owner_id: str) -> PackageSummary:
    docs = await store.find(ownerId=owner_id)
    return PackageSummary(totalWeight=sum(float(d.body["weight"]) for d in docs))
