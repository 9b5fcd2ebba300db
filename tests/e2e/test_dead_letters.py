"""Poison messages end in the dead-letter queue with a reason; operators list and replay them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

from chassis.queue import OutgoingMessage, connect_message_queue
from tests.e2e.conftest import System, eventually


def _deadletters(system: System, *args: str) -> str:
    stack = system.need_stack()
    env = {**os.environ, "QUEUE_URL": stack.footing.urls["workflow"]["QUEUE_URL"]}
    result = subprocess.run(
        [sys.executable, "-m", "workflow.deadletters", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def _listed(system: System, message_id: str) -> list[dict[str, str]]:
    lines = _deadletters(system, "list", "--json", "--limit", "10000").splitlines()
    return [e for e in map(json.loads, lines) if e["messageId"] == message_id]


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
    [dead] = eventually(lambda: _listed(system, poison_id), what="the poison message dead-lettered")
    assert dead["reason"] == "UndecodableBody"
    assert dead["description"]  # the parser's own words: what was wrong with it

    assert f"{poison_id}: replayed" in _deadletters(system, "replay", poison_id)
    # Still poison, so it comes back to the dead letters: once, not twice.
    [again] = eventually(
        lambda: _listed(system, poison_id), what="dead-lettered again after replay"
    )
    assert again["reason"] == "UndecodableBody"
    assert len(_listed(system, poison_id)) == 1
