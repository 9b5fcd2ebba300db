"""Poison messages end in the dead-letter queue with a reason; operators list and replay them."""

from __future__ import annotations

import asyncio
import uuid

from chassis.queue import OutgoingMessage, connect_message_queue
from tests.e2e.conftest import System, dead_lettered, deadletters, eventually


def test_a_poison_message_is_dead_lettered_listed_and_replayed_once(system: System) -> None:
    stack = system.need_stack()
    poison_id = f"poison-{uuid.uuid4().hex[:8]}"

    async def send() -> None:
        queue = await connect_message_queue(stack.footing.urls["ingestion"]["QUEUE_URL"])
        try:
            await queue.send(OutgoingMessage(poison_id, b"{not json", {"operation": "delivery"}))
        finally:
            await queue.close()

    asyncio.run(send())
    [dead] = eventually(
        lambda: dead_lettered(system, poison_id), what="the poison message dead-lettered"
    )
    assert dead["reason"] == "UndecodableBody"
    assert dead["description"]  # the parser's own words: what was wrong with it

    assert f"{poison_id}: replayed" in deadletters(system, "replay", poison_id)
    # Still poison, so it comes back to the dead letters: once, not twice.
    [again] = eventually(
        lambda: dead_lettered(system, poison_id), what="dead-lettered again after replay"
    )
    assert again["reason"] == "UndecodableBody"
    assert len(dead_lettered(system, poison_id)) == 1
