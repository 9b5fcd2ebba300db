"""Operators' view of the dead-letter queue: list what was given up on and why, replay some.

    python -m workflow.deadletters list [--limit N] [--json]
    python -m workflow.deadletters replay MESSAGE_ID [MESSAGE_ID ...]
    python -m workflow.deadletters replay --reason REASON   (every dead letter with that reason)

It reads QUEUE_URL like workflow does. Replay is safe to repeat: a message already replayed
is no longer a dead letter, and workflow's steps are idempotent anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from chassis.queue import DeadLetter, MessageQueue, QueueOptions, connect_message_queue
from workflow.config import Settings


def describe(dead: DeadLetter) -> dict[str, object]:
    return {
        "messageId": dead.message_id,
        "operation": dead.properties.get("operation", ""),
        "reason": dead.reason,
        "description": dead.description,
        "deadLetteredAt": datetime.fromtimestamp(dead.dead_lettered_at, UTC).isoformat(),
        "body": dead.body.decode("utf-8", errors="replace"),
    }


async def list_dead_letters(queue: MessageQueue, limit: int) -> list[dict[str, object]]:
    return [describe(d) for d in await queue.dead_letters(limit=limit)]


async def replay(queue: MessageQueue, message_ids: list[str]) -> dict[str, bool]:
    """Each id -> whether it was replayed (False: not, or no longer, a dead letter)."""
    return {message_id: await queue.replay_dead_letter(message_id) for message_id in message_ids}


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow.deadletters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show dead letters")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replaying = commands.add_parser("replay", help="send dead letters back to the queue")
    replaying.add_argument("message_ids", nargs="*")
    replaying.add_argument("--reason", help="replay every dead letter with this reason")
    args = parser.parse_args(argv)

    settings = Settings()
    queue = await connect_message_queue(
        settings.queue_url,
        QueueOptions(
            lock_seconds=settings.queue_lock_seconds,
            max_delivery_count=settings.queue_max_delivery_count,
        ),
    )
    try:
        if args.command == "list":
            for entry in await list_dead_letters(queue, args.limit):
                if args.json:
                    print(json.dumps(entry))
                else:
                    print(
                        f"{entry['messageId']}  {entry['operation']:<10}  {entry['reason']}: "
                        f"{entry['description']}  ({entry['deadLetteredAt']})"
                    )
            return 0
        ids = list(args.message_ids)
        if args.reason:
            ids += [
                d.message_id
                for d in await queue.dead_letters(limit=10_000)
                if d.reason == args.reason
            ]
        if not ids:
            parser.error("name message ids, or --reason")
        results = await replay(queue, ids)
        for message_id, replayed in results.items():
            outcome = "replayed" if replayed else "not a dead letter (already replayed?)"
            print(f"{message_id}: {outcome}")
        return 0
    finally:
        await queue.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
