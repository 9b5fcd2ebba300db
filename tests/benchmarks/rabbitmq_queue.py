"""The RabbitMQ queue adapter's own CPU per message, in one process, as the services drive it:
sends in batches of 8 (ingestion's group commit), receives up to 16 and completes each in its
own task (workflow's consumer). Prints the process CPU time per message and, load-independent,
the Python function calls per message (cProfile), on a fresh queue; the broker's CPU is not in
either figure.

    uv run --frozen python -m tests.benchmarks.rabbitmq_queue [N]   # TEST_AMQP_URL or local 3.x

To compare two checkouts, run it from each in turn (PYTHONPATH=<checkout>/services).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
import uuid

from chassis.queue import OutgoingMessage, QueueOptions, ReceivedMessage
from chassis.queue.rabbitmq import RabbitQueue
from tests.servers import AMQP_URL

SEND_BATCH = 8
RECEIVE_BATCH = 16


async def _round(queue: RabbitQueue, n: int) -> tuple[float, float]:
    """Send then take `n` messages; the CPU seconds of each half."""
    properties = {
        "operation": "delivery",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    body = b'{"deliveryId": "d-000123", "ownerId": "o-42", "pickupLocation": "here"}'
    started = time.process_time()
    for start in range(0, n, SEND_BATCH):
        await queue.send_many(
            [
                OutgoingMessage(f"m{i}", body, properties)
                for i in range(start, min(start + SEND_BATCH, n))
            ]
        )
    sent = time.process_time()
    done = 0
    in_flight: set[asyncio.Task[None]] = set()

    async def process(message: ReceivedMessage) -> None:
        await asyncio.sleep(0)  # the handler's own awaits, so completes interleave
        await queue.complete(message)

    while done < n:
        for message in await queue.receive(max_messages=RECEIVE_BATCH, wait_seconds=5.0):
            task = asyncio.create_task(process(message))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            done += 1
        if in_flight:
            await asyncio.wait(in_flight)
    return sent - started, time.process_time() - sent


async def main(n: int) -> None:
    url = f"{AMQP_URL}?queue=bench-{uuid.uuid4().hex[:8]}"
    queue = await RabbitQueue.connect(url, QueueOptions(prefetch=RECEIVE_BATCH))
    try:
        await _round(queue, 200)  # warm up: consumer started, code paths taken once
        wall = time.perf_counter()
        sending, taking = await _round(queue, n)
        wall = time.perf_counter() - wall
        profile = cProfile.Profile()
        profile.enable()
        await _round(queue, n)
        profile.disable()
        calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    finally:
        await queue.drop()
        await queue.close()
    print(
        f"{n} messages: CPU a message {1000 * (sending + taking) / n:.3f} ms"
        f" (send {1000 * sending / n:.3f}, receive+complete {1000 * taking / n:.3f});"
        f" {calls / n:.0f} Python calls a message (coroutine resumes count); {wall:.2f} s wall"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000))
