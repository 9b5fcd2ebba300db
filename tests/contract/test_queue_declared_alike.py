"""Ingestion and workflow declare one RabbitMQ queue, and its delivery limit is fixed by
whichever declares it first: both must read QUEUE_MAX_DELIVERY_COUNT, or a value set on
both makes the second one fail to start."""

from __future__ import annotations

import uuid
from pathlib import Path

import aio_pika
import pytest
from fastapi.testclient import TestClient

from chassis.queue import QueueError, QueueOptions, connect_message_queue
from ingestion.config import Settings
from ingestion.main import create_app
from tests.servers import need_server


async def _delete(amqp: str, queue: str) -> None:
    connection = await aio_pika.connect(amqp)
    async with connection:
        channel = await connection.channel()
        for name in (queue, f"{queue}.deadletter"):
            await channel.queue_delete(name)
        await channel.exchange_delete(f"{queue}.dlx")


async def test_ingestion_declares_the_queue_with_workflow_s_delivery_limit(tmp_path: Path) -> None:
    amqp = need_server("rabbitmq")
    name = f"declared-alike-{uuid.uuid4().hex[:8]}"
    url = f"{amqp}?queue={name}"
    try:
        settings = Settings(
            queue_url=url, store_url=f"sqlite:///{tmp_path}/i.db", queue_max_delivery_count=3
        )
        with TestClient(create_app(settings)) as client:  # ingestion first: it declares
            assert client.get("/health/ready").status_code == 200
        # Workflow with the same setting starts; with another one it is refused, by name.
        workflow = await connect_message_queue(url, QueueOptions(max_delivery_count=3))
        await workflow.close()
        with pytest.raises(QueueError, match="exists with other settings"):
            await connect_message_queue(url, QueueOptions(max_delivery_count=10))
    finally:
        await _delete(amqp, name)
