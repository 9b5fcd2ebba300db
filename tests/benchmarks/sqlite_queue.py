"""The SQLite queue in one process: send N messages, then receive (16 at a time) and complete
them all, in a fresh file. Prints each phase's wall time, and the mean time of one receive
while (nearly) all N messages are ready.

    uv run --frozen python -m tests.benchmarks.sqlite_queue [N]

A send checks the message id against every id sent in the duplicate window (10 minutes), and
a receive picks the next ready messages: both must stay indexed lookups as the file fills.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

from chassis.queue import OutgoingMessage, QueueOptions, connect_message_queue


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        queue = await connect_message_queue(
            f"sqlite:///{folder}/q.db?queue=bench", QueueOptions(lock_seconds=60)
        )
        started = time.perf_counter()
        for i in range(n):
            await queue.send(OutgoingMessage(f"m{i}", b'{"deliveryId": "x"}'))
        sent = time.perf_counter()
        received, picks, picking = 0, 0, 0.0
        while received < n:
            before = time.perf_counter()
            batch = await queue.receive(max_messages=16, wait_seconds=0)
            if picks < BACKLOG_PICKS:  # the picks from (nearly) the whole backlog
                picks, picking = picks + 1, picking + time.perf_counter() - before
            for message in batch:
                await queue.complete(message)
            received += len(batch)
        done = time.perf_counter()
        await queue.close()
    print(
        f"{n} messages: send {sent - started:.2f} s, receive+complete {done - sent:.2f} s;"
        f" a receive from the full backlog {1000 * picking / max(picks, 1):.2f} ms"
    )


BACKLOG_PICKS = 50


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
