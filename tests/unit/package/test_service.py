"""The package service's use cases on the embedded store: idempotent writes that workflow may
repeat or deliver late, packages kept per owner, and the summary of an owner's weight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chassis.documents import DocumentStore, connect_document_store
from contracts.vocabulary import PackageSize
from package import service
from package.schemas import Package, PackagePatch, PackageUpsert

T0 = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DocumentStore]:
    store = await connect_document_store(f"sqlite:///{tmp_path}/package.db", service.PACKAGES)
    yield store
    await store.close()


def upsert(**fields: Any) -> PackageUpsert:
    return PackageUpsert.model_validate({"size": "Small", "weight": 10, **fields})


async def test_a_new_package_is_created_and_read_back(store: DocumentStore) -> None:
    created = await service.upsert(store=store, package_id="p-1", data=upsert(tag="fragile"))
    assert created is True
    assert await service.get(store=store, package_id="p-1", owner_id=None) == Package(
        id="p-1", size=PackageSize.SMALL, weight=10.0, tag="fragile"
    )


async def test_an_unknown_package_reads_as_none(store: DocumentStore) -> None:
    assert await service.get(store=store, package_id="nowhere", owner_id=None) is None


async def test_writing_the_same_package_again_changes_nothing(store: DocumentStore) -> None:
    data = upsert(ownerId="o-1", requestedAt=T0.isoformat())
    assert await service.upsert(store=store, package_id="p-1", data=data) is True
    first = await store.get(service.document_id("p-1", "o-1"))
    assert await service.upsert(store=store, package_id="p-1", data=data) is False
    again = await store.get(service.document_id("p-1", "o-1"))
    assert first is not None and again is not None
    assert again.etag == first.etag  # not even rewritten


async def test_a_newer_write_replaces_and_an_older_one_is_ignored(store: DocumentStore) -> None:
    async def write(weight: int, at: datetime) -> None:
        data = upsert(ownerId="o-1", weight=weight, requestedAt=at.isoformat())
        await service.upsert(store=store, package_id="p-1", data=data)

    async def weight() -> float:
        found = await service.get(store=store, package_id="p-1", owner_id="o-1")
        assert found is not None
        return found.weight

    await write(10, T0)
    await write(20, T0 + timedelta(minutes=1))
    assert await weight() == 20.0
    await write(30, T0 + timedelta(seconds=30))  # a late redelivery of an older request
    assert await weight() == 20.0
    await write(40, T0 + timedelta(minutes=2))
    assert await weight() == 40.0


async def test_a_write_without_a_time_replaces_whatever_is_there(store: DocumentStore) -> None:
    await service.upsert(store=store, package_id="p-1", data=upsert(requestedAt=T0.isoformat()))
    await service.upsert(store=store, package_id="p-1", data=upsert(weight=5))
    found = await service.get(store=store, package_id="p-1", owner_id=None)
    assert found is not None and found.weight == 5.0


async def test_two_owners_with_the_same_package_id_have_two_packages(
    store: DocumentStore,
) -> None:
    await service.upsert(store=store, package_id="box", data=upsert(ownerId="alice", weight=1))
    await service.upsert(store=store, package_id="box", data=upsert(ownerId="bob", weight=2))
    alice = await service.get(store=store, package_id="box", owner_id="alice")
    bob = await service.get(store=store, package_id="box", owner_id="bob")
    assert alice is not None and bob is not None
    assert (alice.ownerId, alice.weight, bob.ownerId, bob.weight) == ("alice", 1.0, "bob", 2.0)
    assert alice.id == bob.id == "box"
    assert await service.get(store=store, package_id="box", owner_id=None) is None


@pytest.mark.parametrize("owner_id", ["alice", "a/b?c d", "\u00e9\u00e8\u4e2d", "x" * 128])
def test_an_owner_s_document_id_is_a_safe_name_kept_apart_from_other_owners(
    owner_id: str,
) -> None:
    id = service.document_id("p" * 128, owner_id)
    assert id.startswith("p" * 80 + ".")
    assert len(id) == 80 + 1 + 32
    assert id.replace(".", "").isalnum()
    assert id != service.document_id("p" * 128, owner_id + "!")
    assert service.document_id("p-1", None) == service.document_id("p-1", "") == "p-1"


async def test_concurrent_writes_of_one_package_end_at_the_newest(store: DocumentStore) -> None:
    # Each write races the others through create, read and a replace on the ETag.
    writes = [
        upsert(ownerId="o-1", weight=w, requestedAt=(T0 + timedelta(seconds=w)).isoformat())
        for w in range(1, 21)
    ]
    created = await asyncio.gather(
        *(service.upsert(store=store, package_id="p-1", data=d) for d in reversed(writes))
    )
    assert created.count(True) == 1
    found = await service.get(store=store, package_id="p-1", owner_id="o-1")
    assert found is not None and found.weight == 20.0


async def test_a_patch_changes_only_the_given_fields(store: DocumentStore) -> None:
    await service.upsert(store=store, package_id="p-1", data=upsert(ownerId="o-1", tag="t"))
    changed = await service.patch(
        store=store,
        package_id="p-1",
        owner_id="o-1",
        data=PackagePatch.model_validate({"weight": 7.5}),
    )
    assert changed is True
    assert await service.get(store=store, package_id="p-1", owner_id="o-1") == Package(
        id="p-1", size=PackageSize.SMALL, weight=7.5, tag="t", ownerId="o-1"
    )


async def test_a_patch_of_an_unknown_package_says_so_and_creates_nothing(
    store: DocumentStore,
) -> None:
    patch = PackagePatch.model_validate({"tag": "x"})
    assert await service.patch(store=store, package_id="p-1", owner_id=None, data=patch) is False
    assert await store.get("p-1") is None


async def test_the_summary_adds_up_only_the_owner_s_packages(store: DocumentStore) -> None:
    for package_id, owner, weight in (("a", "o-1", 1.5), ("b", "o-1", 2), ("a", "o-2", 100)):
        await service.upsert(
            store=store, package_id=package_id, data=upsert(ownerId=owner, weight=weight)
        )
    assert (await service.summary(store=store, owner_id="o-1")).totalWeight == 3.5
    assert (await service.summary(store=store, owner_id="o-2")).totalWeight == 100.0
    assert (await service.summary(store=store, owner_id="nobody")).totalWeight == 0.0
