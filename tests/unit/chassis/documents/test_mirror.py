"""The console's mirror of a collection (chassis/documents/mirror.py) on a real SQLite store:
it shows every change, and parses again only the documents that changed."""

from __future__ import annotations

from pathlib import Path

from chassis.documents import JSON, Collection, connect_document_store
from chassis.documents.mirror import DocumentMirror


async def test_a_refresh_parses_only_what_changed_and_shows_every_change(tmp_path: Path) -> None:
    store = await connect_document_store(
        f"sqlite:///{tmp_path}/mirror.db", Collection(name="things")
    )
    parsed: list[str] = []

    def parse(id: str, body: JSON) -> int:
        parsed.append(id)
        return int(body["n"])

    mirror = DocumentMirror(parse)
    try:
        for i in range(10):
            await store.create(f"t-{i}", {"n": i})
        assert await mirror.read(store) == {f"t-{i}": i for i in range(10)}
        assert len(parsed) == 10
        parsed.clear()
        assert len(await mirror.read(store)) == 10
        assert parsed == []  # nothing changed: nothing parsed

        doc = await store.get("t-3")
        assert doc is not None
        await store.replace("t-3", {"n": 33}, etag=doc.etag)
        await store.delete("t-5")
        await store.create("t-10", {"n": 10})
        seen = await mirror.read(store)
        assert sorted(parsed) == ["t-10", "t-3"]
        assert seen["t-3"] == 33 and "t-5" not in seen and seen["t-10"] == 10
        assert len(seen) == 10
    finally:
        await store.close()
