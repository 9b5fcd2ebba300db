"""A peek-lock queue in an SQLite file, shared by the processes on one machine.

Semantics follow Service Bus: a lock per received message that expires, a delivery count,
dead-lettering past the maximum count, duplicate detection on the message id.

Each send and receive is an indexed lookup however full the file is: a send's expired ids
are a range of (queue, sent_at), a receive takes the messages that have been ready longest
as a range of (queue, visible_at, seq), already in that order. Ready longest first is
arrival order for messages not yet delivered; a message abandoned or whose lock expired
queues again from the moment it became ready.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import aiosqlite

from chassis.documents.sqlite import open_sqlite
from chassis.queue import (
    MAX_DELIVERY_EXCEEDED,
    DeadLetter,
    MessageLockLost,
    OutgoingMessage,
    QueueDepth,
    QueueOptions,
    ReceivedMessage,
)

DUPLICATE_WINDOW_SECONDS = 600.0
POLL_SECONDS = 0.02  # other processes cannot wake us; polling an index is cheap

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    properties TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token TEXT
);
CREATE INDEX IF NOT EXISTS ix_messages_ready ON messages (queue, visible_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    properties TEXT NOT NULL,
    reason TEXT NOT NULL,
    description TEXT NOT NULL,
    dead_lettered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sent_ids (
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (queue, message_id)
);
CREATE INDEX IF NOT EXISTS ix_sent_ids_age ON sent_ids (queue, sent_at);
"""
# (IF NOT EXISTS: a file made before an index existed gets it when next opened.)

DROP_EXPIRED_IDS = "DELETE FROM sent_ids WHERE queue = ? AND sent_at < ?"
NEXT_READY = (
    "SELECT seq, message_id, body, properties, enqueued_at, delivery_count FROM messages"
    " WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, seq LIMIT ?"
)


class SqliteQueue:
    def __init__(self, db: aiosqlite.Connection, name: str, options: QueueOptions) -> None:
        self._db = db
        self._name = name
        self._options = options
        self._lock = asyncio.Lock()  # one transaction at a time on this connection

    @classmethod
    async def connect(cls, url: str, options: QueueOptions) -> SqliteQueue:
        name = parse_qs(urlsplit(url).query).get("queue", [""])[0]
        if not name:
            raise ValueError(f"the queue URL names no queue: add ?queue=NAME to {url}")
        db = await open_sqlite(url.split("?", 1)[0])
        await db.executescript(_SCHEMA)
        return cls(db, name, options)

    async def _transaction(self) -> None:
        await self._db.execute("BEGIN IMMEDIATE")

    async def send(self, message: OutgoingMessage) -> None:
        await self.send_many([message])

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """One transaction for the batch: one commit, however many messages."""
        if not messages:
            return
        async with self._lock:
            await self._transaction()
            now = time.time()  # taken in turn: sends are in the order of their times
            try:
                await self._db.execute(
                    DROP_EXPIRED_IDS, (self._name, now - DUPLICATE_WINDOW_SECONDS)
                )
                for message in messages:
                    cur = await self._db.execute(
                        "INSERT OR IGNORE INTO sent_ids (queue, message_id, sent_at)"
                        " VALUES (?, ?, ?)",
                        (self._name, message.message_id, now),
                    )
                    if cur.rowcount:  # a duplicate within the window is accepted and dropped
                        await self._db.execute(
                            "INSERT INTO messages (queue, message_id, body, properties,"
                            " enqueued_at, visible_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (
                                self._name,
                                message.message_id,
                                message.body,
                                json.dumps(message.properties),
                                now,
                                now,
                            ),
                        )
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def receive(
        self, *, max_messages: int = 1, wait_seconds: float = 1.0
    ) -> list[ReceivedMessage]:
        deadline = time.monotonic() + wait_seconds
        while True:
            got = await self._receive_ready(max_messages)
            if got or time.monotonic() >= deadline:
                return got
            await asyncio.sleep(POLL_SECONDS)

    async def _receive_ready(self, max_messages: int) -> list[ReceivedMessage]:
        now = time.time()
        received: list[ReceivedMessage] = []
        async with self._lock:
            # A cheap read first: most polls find nothing and should not take the write lock.
            async with self._db.execute(
                "SELECT 1 FROM messages WHERE queue = ? AND visible_at <= ? LIMIT 1",
                (self._name, now),
            ) as c:
                if await c.fetchone() is None:
                    return []
            await self._transaction()
            try:
                async with self._db.execute(NEXT_READY, (self._name, now, max_messages)) as c:
                    rows = await c.fetchall()
                for seq, message_id, body, props, enqueued_at, count in rows:
                    count += 1
                    if count > self._options.max_delivery_count:
                        await self._move_to_dead_letters(
                            seq,
                            reason=MAX_DELIVERY_EXCEEDED,
                            description=f"delivered {count - 1} times without being completed",
                        )
                        continue
                    token = uuid.uuid4().hex
                    await self._db.execute(
                        "UPDATE messages SET lock_token = ?, visible_at = ?, delivery_count = ?"
                        " WHERE seq = ?",
                        (token, now + self._options.lock_seconds, count, seq),
                    )
                    received.append(
                        ReceivedMessage(
                            message_id=message_id,
                            body=bytes(body),
                            properties=json.loads(props),
                            delivery_count=count,
                            enqueued_at=enqueued_at,
                            handle=(seq, token),
                        )
                    )
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return received

    async def _move_to_dead_letters(self, seq: int, *, reason: str, description: str) -> None:
        await self._db.execute(
            "INSERT INTO dead_letters (queue, message_id, body, properties, reason, description,"
            " dead_lettered_at) SELECT queue, message_id, body, properties, ?, ?, ?"
            " FROM messages WHERE seq = ?",
            (reason, description, time.time(), seq),
        )
        await self._db.execute("DELETE FROM messages WHERE seq = ?", (seq,))

    async def _settle(self, message: ReceivedMessage, sql: str, *params: object) -> None:
        seq, token = message.handle
        async with self._lock:
            cur = await self._db.execute(
                sql + " WHERE seq = ? AND lock_token = ? AND visible_at > ?",
                (*params, seq, token, time.time()),
            )
            await self._db.commit()
        if cur.rowcount == 0:
            raise MessageLockLost(message.message_id)

    async def complete(self, message: ReceivedMessage) -> None:
        await self._settle(message, "DELETE FROM messages")

    async def abandon(self, message: ReceivedMessage, *, delay_seconds: float = 0.0) -> None:
        await self._settle(
            message,
            "UPDATE messages SET lock_token = NULL, visible_at = ?",
            time.time() + delay_seconds,
        )

    async def renew_lock(self, message: ReceivedMessage) -> None:
        await self._settle(
            message, "UPDATE messages SET visible_at = ?", time.time() + self._options.lock_seconds
        )

    async def dead_letter(self, message: ReceivedMessage, *, reason: str, description: str) -> None:
        seq, token = message.handle
        async with self._lock:
            await self._transaction()
            try:
                cur = await self._db.execute(
                    "SELECT 1 FROM messages WHERE seq = ? AND lock_token = ? AND visible_at > ?",
                    (seq, token, time.time()),
                )
                if await cur.fetchone() is None:
                    raise MessageLockLost(message.message_id)
                await self._move_to_dead_letters(seq, reason=reason, description=description)
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        async with (
            self._lock,
            self._db.execute(
                "SELECT message_id, body, properties, reason, description, dead_lettered_at"
                " FROM dead_letters WHERE queue = ? ORDER BY seq LIMIT ?",
                (self._name, limit),
            ) as c,
        ):
            rows = await c.fetchall()
        return [DeadLetter(r[0], bytes(r[1]), json.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    async def replay_dead_letter(self, message_id: str) -> bool:
        now = time.time()
        async with self._lock:
            await self._transaction()
            try:
                async with self._db.execute(
                    "SELECT seq, body, properties FROM dead_letters"
                    " WHERE queue = ? AND message_id = ? ORDER BY seq LIMIT 1",
                    (self._name, message_id),
                ) as c:
                    row = await c.fetchone()
                if row is None:
                    await self._db.rollback()
                    return False
                await self._db.execute(
                    "INSERT INTO messages (queue, message_id, body, properties, enqueued_at,"
                    " visible_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (self._name, message_id, row[1], row[2], now, now),
                )
                await self._db.execute("DELETE FROM dead_letters WHERE seq = ?", (row[0],))
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return True

    async def depth(self) -> QueueDepth:
        counts = []
        async with self._lock:
            for table in ("messages", "dead_letters"):
                async with self._db.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE queue = ?", (self._name,)
                ) as c:
                    row = await c.fetchone()
                counts.append(int(row[0]) if row else 0)
        return QueueDepth(waiting=counts[0], dead_letters=counts[1])

    async def ping(self) -> None:
        async with self._lock:
            await self._db.execute("SELECT 1")

    async def close(self) -> None:
        await self._db.close()
