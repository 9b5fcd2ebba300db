"""The document store contract: the same assertions for every adapter."""

from __future__ import annotations

import asyncio

import pytest

from chassis.documents import (
    ConcurrencyConflict,
    Document,
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


# ------------------------------------------------ batches: each item its own outcome


async def test_create_many_creates_the_new_and_reports_the_existing_per_item(
    store: DocumentStore,
) -> None:
    await store.create("d2", {"n": "before"})
    outcomes = await store.create_many([("d1", {"n": 1}), ("d2", {"n": 2}), ("d3", {"n": 3})])

    assert [type(o) for o in outcomes] == [Document, DocumentExists, Document]
    assert isinstance(outcomes[1], DocumentExists) and outcomes[1].args == ("d2",)
    for id, n in (("d1", 1), ("d3", 3)):
        got = await store.get(id)
        created = outcomes[int(id[1]) - 1]
        assert got is not None and got.body == {"n": n}
        assert isinstance(created, Document) and got.etag == created.etag
    kept = await store.get("d2")
    assert kept is not None and kept.body == {"n": "before"}


async def test_create_many_of_an_id_given_twice_creates_it_from_the_first(
    store: DocumentStore,
) -> None:
    outcomes = await store.create_many([("d1", {"n": 1}), ("d1", {"n": 2})])
    assert isinstance(outcomes[0], Document) and isinstance(outcomes[1], DocumentExists)
    got = await store.get("d1")
    assert got is not None and got.body == {"n": 1} and got.etag == outcomes[0].etag


async def test_create_many_of_nothing_is_nothing(store: DocumentStore) -> None:
    assert await store.create_many([]) == []
    assert await store.get_many([]) == {}


async def test_created_many_are_found_by_their_indexed_fields(store: DocumentStore) -> None:
    await store.create_many([(f"d{n}", {"ownerId": f"o{n % 2}"}) for n in range(6)])
    found = await store.find(ownerId="o1")
    assert sorted(d.id for d in found) == ["d1", "d3", "d5"]


async def test_create_many_of_many_items_takes_them_all(store: DocumentStore) -> None:
    # Past what one SQL statement's parameters hold: chunked where the store must.
    items = [(f"d{n}", {"n": n}) for n in range(700)]
    outcomes = await store.create_many(items)
    assert all(isinstance(o, Document) for o in outcomes)
    assert len(await store.get_many([id for id, _ in items])) == 700


async def test_get_many_returns_those_that_exist_with_their_etags(store: DocumentStore) -> None:
    one = await store.create("d1", {"n": 1})
    two = await store.create("d2", {"n": 2})
    got = await store.get_many(["d2", "nope", "d1", "d2"])
    assert set(got) == {"d1", "d2"}
    assert got["d1"].body == {"n": 1} and got["d1"].etag == one.etag
    assert got["d2"].etag == two.etag


async def test_create_many_refuses_an_unstorable_body_before_writing_any(
    store: DocumentStore,
) -> None:
    with pytest.raises(ValueError, match="not storable"):
        await store.create_many([("d1", {"n": 1}), ("d2", {"n": 2**64})])
    assert await store.get("d1") is None


async def test_concurrent_create_many_of_one_id_creates_it_once(store: DocumentStore) -> None:
    outcomes = await asyncio.gather(*(store.create_many([("d1", {"n": n})]) for n in range(8)))
    winners = [batch[0] for batch in outcomes if isinstance(batch[0], Document)]
    assert len(winners) == 1
    got = await store.get("d1")
    assert got is not None and got == winners[0]
