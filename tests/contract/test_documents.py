"""The document store contract: the same assertions for every adapter."""

from __future__ import annotations

import asyncio

import pytest

from chassis.documents import (
    ConcurrencyConflict,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
)


async def test_create_then_get_returns_the_body_and_an_etag(store: DocumentStore) -> None:
    created = await store.create("d1", {"ownerId": "o1", "weight": 2.5, "tags": ["a"]})
    got = await store.get("d1")
    assert got is not None
    assert got.body == {"ownerId": "o1", "weight": 2.5, "tags": ["a"]}
    assert got.etag == created.etag


async def test_a_body_round_trips_exactly(store: DocumentStore) -> None:
    # What the stores' JSON codec must keep: text beyond ASCII, the 64-bit integer range
    # (drone windows keep times as microseconds), doubles, nesting, null.
    body = {
        "ownerId": "Zoë 配送 \u2603",
        "micros": [2**63 - 1, -(2**63), 0],
        "miles": [0.1, 1e-7, 12345.678901234567],
        "nested": {"ok": True, "none": None, "rows": [["d1", 1, 2.5]]},
    }
    await store.create("d1", body)
    got = await store.get("d1")
    assert got is not None and got.body == body


async def test_an_integer_beyond_64_bits_is_refused_not_rounded(store: DocumentStore) -> None:
    with pytest.raises(ValueError, match="not storable"):
        await store.create("d1", {"n": 2**64})
    assert await store.get("d1") is None


async def test_get_of_an_unknown_id_is_none(store: DocumentStore) -> None:
    assert await store.get("nope") is None


async def test_create_refuses_an_existing_id(store: DocumentStore) -> None:
    await store.create("d1", {"n": 1})
    with pytest.raises(DocumentExists):
        await store.create("d1", {"n": 2})
    got = await store.get("d1")
    assert got is not None and got.body == {"n": 1}


async def test_replace_with_the_current_etag_writes_and_changes_the_etag(
    store: DocumentStore,
) -> None:
    first = await store.create("d1", {"n": 1})
    second = await store.replace("d1", {"n": 2}, etag=first.etag)
    assert second.etag != first.etag
    got = await store.get("d1")
    assert got is not None and got.body == {"n": 2} and got.etag == second.etag


async def test_replace_with_a_stale_etag_is_a_conflict(store: DocumentStore) -> None:
    first = await store.create("d1", {"n": 1})
    await store.replace("d1", {"n": 2}, etag=first.etag)
    with pytest.raises(ConcurrencyConflict):
        await store.replace("d1", {"n": 3}, etag=first.etag)
    got = await store.get("d1")
    assert got is not None and got.body == {"n": 2}


async def test_replace_of_an_unknown_id_is_not_found(store: DocumentStore) -> None:
    with pytest.raises(DocumentNotFound):
        await store.replace("nope", {"n": 1}, etag="whatever")


async def test_upsert_creates_then_overwrites(store: DocumentStore) -> None:
    a = await store.upsert("d1", {"n": 1})
    b = await store.upsert("d1", {"n": 2})
    assert a.etag != b.etag
    got = await store.get("d1")
    assert got is not None and got.body == {"n": 2}


async def test_delete_removes_and_reports_whether_it_did(store: DocumentStore) -> None:
    await store.create("d1", {"n": 1})
    assert await store.delete("d1") is True
    assert await store.get("d1") is None
    assert await store.delete("d1") is False


async def test_delete_with_a_stale_etag_is_a_conflict(store: DocumentStore) -> None:
    first = await store.create("d1", {"n": 1})
    await store.replace("d1", {"n": 2}, etag=first.etag)
    with pytest.raises(ConcurrencyConflict):
        await store.delete("d1", etag=first.etag)
    assert await store.get("d1") is not None


async def test_find_filters_on_equal_fields(store: DocumentStore) -> None:
    await store.create("a", {"ownerId": "o1", "month": "2026-11", "w": 1})
    await store.create("b", {"ownerId": "o1", "month": "2026-10", "w": 2})
    await store.create("c", {"ownerId": "o2", "month": "2026-11", "w": 4})
    assert {d.id for d in await store.find(ownerId="o1")} == {"a", "b"}
    assert {d.id for d in await store.find(ownerId="o1", month="2026-11")} == {"a"}
    assert {d.id for d in await store.find()} == {"a", "b", "c"}
    assert await store.find(ownerId="nobody") == []


async def test_find_sees_updates_and_deletes(store: DocumentStore) -> None:
    first = await store.create("a", {"ownerId": "o1"})
    await store.replace("a", {"ownerId": "o2"}, etag=first.etag)
    assert await store.find(ownerId="o1") == []
    assert [d.id for d in await store.find(ownerId="o2")] == ["a"]
    await store.delete("a")
    assert await store.find(ownerId="o2") == []


async def test_versions_list_every_document_with_its_current_etag(store: DocumentStore) -> None:
    assert await store.versions() == {}
    a = await store.create("a", {"w": 1})
    b = await store.create("b", {"w": 2})
    assert await store.versions() == {"a": a.etag, "b": b.etag}
    a2 = await store.replace("a", {"w": 3}, etag=a.etag)
    await store.delete("b")
    assert await store.versions() == {"a": a2.etag}


async def test_concurrent_read_modify_write_loses_no_update(store: DocumentStore) -> None:
    """Twenty writers increment one counter with optimistic concurrency: all twenty land."""
    await store.create("counter", {"n": 0})

    async def increment() -> None:
        while True:
            doc = await store.get("counter")
            assert doc is not None
            try:
                await store.replace("counter", {"n": doc.body["n"] + 1}, etag=doc.etag)
                return
            except ConcurrencyConflict:
                await asyncio.sleep(0)

    await asyncio.gather(*(increment() for _ in range(20)))
    got = await store.get("counter")
    assert got is not None and got.body["n"] == 20


async def test_create_many_creates_the_new_and_leaves_the_taken(store: DocumentStore) -> None:
    await store.create("d2", {"n": 0})
    created = await store.create_many([("d1", {"n": 1}), ("d2", {"n": 2}), ("d3", {"n": 3})])
    assert [None if d is None else (d.id, d.body) for d in created] == [
        ("d1", {"n": 1}),
        None,
        ("d3", {"n": 3}),
    ]
    for id, n in (("d1", 1), ("d2", 0), ("d3", 3)):
        got = await store.get(id)
        assert got is not None and got.body == {"n": n}
    first = created[0]
    assert first is not None and (await store.get("d1")) == first
    assert await store.create_many([]) == []


async def test_create_many_refuses_an_unstorable_body_before_writing_any(
    store: DocumentStore,
) -> None:
    with pytest.raises(ValueError, match="not storable"):
        await store.create_many([("d1", {"n": 1}), ("d2", {"n": 2**64})])
    assert await store.get("d1") is None


async def test_concurrent_create_many_of_one_id_creates_it_once(store: DocumentStore) -> None:
    outcomes = await asyncio.gather(*(store.create_many([("d1", {"n": n})]) for n in range(8)))
    winners = [batch[0] for batch in outcomes if batch[0] is not None]
    assert len(winners) == 1
    got = await store.get("d1")
    assert got is not None and got == winners[0]
