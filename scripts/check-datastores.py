"""Prove the compose datastores work, from a container on the compose network.

    docker run --rm --network drone-delivery_default -v "$PWD/scripts:/scripts:ro" \
        drone-delivery/ingestion:dev python /scripts/check-datastores.py

Runs in any service image (they carry asyncpg, redis and aio-pika). Checks both service
databases, Redis persistence settings, and a RabbitMQ quorum queue whose poison message
reaches its dead-letter queue after the delivery limit. Exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import aio_pika
import asyncpg
import redis.asyncio as aioredis

PG = os.environ.get("CHECK_POSTGRES", "postgresql://drone:drone@postgres:5432")
REDIS = os.environ.get("CHECK_REDIS", "redis://redis:6379/0")
AMQP = os.environ.get("CHECK_AMQP", "amqp://drone:drone@rabbitmq:5672/%2F")


async def check_postgres() -> str:
    seen = []
    for db in ("package", "dronescheduler"):
        conn = await asyncpg.connect(f"{PG}/{db}")
        try:
            await conn.execute("CREATE TEMP TABLE t (id int)")
            await conn.execute("INSERT INTO t VALUES (1)")
            assert await conn.fetchval("SELECT count(*) FROM t") == 1
            seen.append(await conn.fetchval("SELECT current_database()"))
            version = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
    return f"databases {', '.join(seen)} (PostgreSQL {version})"


async def check_redis() -> str:
    client = aioredis.from_url(REDIS)
    try:
        key = f"check:{uuid.uuid4().hex}"
        await client.set(key, "1", ex=60)
        assert await client.get(key) == b"1"
        aof = (await client.config_get("appendonly"))["appendonly"]
        assert aof == "yes", f"appendonly is {aof}"
        version = (await client.info("server"))["redis_version"]
    finally:
        await client.aclose()
    return f"set/get, appendonly=yes (Redis {version})"


async def check_rabbitmq() -> str:
    connection = await aio_pika.connect_robust(AMQP)
    suffix = uuid.uuid4().hex[:8]
    try:
        channel = await connection.channel()
        dead = await channel.declare_queue(f"check-dead-{suffix}", durable=True)
        queue = await channel.declare_queue(
            f"check-{suffix}",
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": 1,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dead.name,
            },
        )
        await channel.default_exchange.publish(
            aio_pika.Message(b"poison", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue.name,
        )
        # Rejected with requeue until the delivery limit sends it to the dead-letter queue.
        deadline = time.monotonic() + 20
        dead_message = None
        while dead_message is None and time.monotonic() < deadline:
            message = await queue.get(no_ack=False, fail=False)
            if message is not None:
                await message.reject(requeue=True)
            dead_message = await dead.get(no_ack=False, fail=False)
            if dead_message is None:
                await asyncio.sleep(0.1)
        assert dead_message is not None, "poison message never reached the dead-letter queue"
        assert dead_message.body == b"poison"
        assert dead_message.headers.get("x-death"), "no x-death header"
        await dead_message.ack()
        await queue.delete(if_unused=False, if_empty=False)
        await dead.delete(if_unused=False, if_empty=False)
        version = connection.transport.connection.server_properties.get("version", b"?")
    finally:
        await connection.close()
    if isinstance(version, bytes):
        version = version.decode()
    return f"quorum queue, delivery limit -> dead-letter with x-death (RabbitMQ {version})"


async def main() -> int:
    failed = 0
    for name, check in (
        ("postgres", check_postgres),
        ("redis", check_redis),
        ("rabbitmq", check_rabbitmq),
    ):
        try:
            print(f"ok   {name}: {await check()}")
        except Exception as exc:
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
