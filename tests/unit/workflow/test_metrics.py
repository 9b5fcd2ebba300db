"""Workflow's pipeline metrics (workflow/metrics.py) as its consumer settles messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import REGISTRY

from chassis.queue import OutgoingMessage, QueueOptions, ReceivedMessage, connect_message_queue
from workflow.consumer import Consumer
from workflow.service import Complete, DeadLetter, Outcome, RetryLater


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_workflow_counts_outcomes_dead_letters_lag_and_processing_time(
    tmp_path: Path,
) -> None:
    queue = await connect_message_queue(
        f"sqlite:///{tmp_path}/q.db?queue=t", QueueOptions(lock_seconds=30, max_delivery_count=5)
    )
    outcomes: dict[str, Outcome] = {
        "ok": Complete(),
        "later": RetryLater("package unavailable", 60.0),
        "never": DeadLetter("Rejected", "package refused it"),
    }
    for message_id in (*outcomes, "bug"):
        await queue.send(OutgoingMessage(message_id, b"{}", {"operation": "cancel"}))
    done = asyncio.Event()
    seen: list[str] = []

    async def handler(message: ReceivedMessage) -> Outcome:
        seen.append(message.message_id)
        if len(seen) == 4:
            done.set()
        if message.message_id == "bug":
            raise RuntimeError("a bug")
        return outcomes[message.message_id]

    def counts() -> dict[str, float]:
        return {
            **{
                outcome: sample("messages_processed_total", operation="cancel", outcome=outcome)
                for outcome in ("completed", "retried", "dead_lettered")
            },
            "dead": sample("dead_letters_total", reason="Rejected"),
            "lag": sample("queue_lag_seconds_count"),
            "time": sample("message_processing_seconds_count", operation="cancel"),
        }

    before = counts()
    consumer = Consumer(queue, handler, concurrency=4, lock_seconds=30)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(done.wait(), 20)
    await consumer.stop(5)
    running.cancel()
    await queue.close()
    after = counts()
    assert {k: after[k] - before[k] for k in after} == {
        "completed": 1,
        "retried": 2,  # the handler's bug is retried too
        "dead_lettered": 1,
        "dead": 1,
        "lag": 4,
        "time": 4,
    }
