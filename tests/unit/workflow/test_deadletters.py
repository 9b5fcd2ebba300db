"""The operators' dead-letter tool (workflow/deadletters.py) on the embedded queue, as an
operator runs it: QUEUE_URL from the environment, lines or JSON out, replays by id or reason."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chassis.queue import MessageQueue, OutgoingMessage, QueueOptions, connect_message_queue
from workflow.deadletters import main

OPTIONS = QueueOptions(lock_seconds=30, max_delivery_count=10)


@pytest.fixture
async def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MessageQueue]:
    url = f"sqlite:///{tmp_path}/queue.db?queue=deadletters-test"
    monkeypatch.setenv("QUEUE_URL", url)
    queue = await connect_message_queue(url, OPTIONS)
    for message_id, operation, reason in (
        ("d-1", "delivery", "Rejected"),
        ("d-2.v2", "reschedule", "Rejected"),
        ("d-3", "cancel", "Unreadable"),
    ):
        await queue.send(
            OutgoingMessage(message_id, b'{"deliveryId": "x"}', {"operation": operation})
        )
        [received] = await queue.receive(wait_seconds=2)
        await queue.dead_letter(received, reason=reason, description=f"{message_id} refused")
    yield queue
    await queue.close()


async def test_the_list_says_each_dead_letter_s_operation_reason_and_body(
    queue: MessageQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await main(["list", "--json"]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["messageId"], e["operation"], e["reason"]) for e in entries] == [
        ("d-1", "delivery", "Rejected"),
        ("d-2.v2", "reschedule", "Rejected"),
        ("d-3", "cancel", "Unreadable"),
    ]
    assert entries[0]["description"] == "d-1 refused"
    assert entries[0]["body"] == '{"deliveryId": "x"}'
    assert entries[0]["deadLetteredAt"].endswith("+00:00")
    assert await main(["list", "--limit", "1"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("d-1  delivery    Rejected: d-1 refused  (")


async def test_a_replay_by_reason_sends_those_back_once(
    queue: MessageQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await main(["replay", "--reason", "Rejected"]) == 0
    assert capsys.readouterr().out.splitlines() == ["d-1: replayed", "d-2.v2: replayed"]
    back = await queue.receive(max_messages=10, wait_seconds=2)
    assert sorted(m.message_id for m in back) == ["d-1", "d-2.v2"]
    assert [d.message_id for d in await queue.dead_letters()] == ["d-3"]
    assert await main(["replay", "d-1", "d-3"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "d-1: not a dead letter (already replayed?)",
        "d-3: replayed",
    ]
    assert await queue.dead_letters() == []


async def test_a_replay_that_names_nothing_is_refused(
    queue: MessageQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        await main(["replay"])
    assert refused.value.code == 2
    assert "name message ids, or --reason" in capsys.readouterr().err
    assert len(await queue.dead_letters()) == 3
