from __future__ import annotations

from pydantic import Field, field_validator

from chassis.queue import with_default_queue
from chassis.settings import ServiceSettings
from contracts.messages import QUEUE


class Settings(ServiceSettings):
    port: int = 8081
    queue_url: str = f"sqlite:///data/queue.db?queue={QUEUE}"
    # Its record of accepted requests: idempotency keys, and which ids it issued.
    store_url: str = "sqlite:///data/ingestion.db"
    # The queue's delivery limit, fixed where the queue is first declared (RabbitMQ): the
    # same setting as workflow's, so whichever of the two starts first declares it alike.
    queue_max_delivery_count: int = Field(10, ge=1, le=2000)
    # Concurrent accepts share a store call and a queue call, up to this many at a time
    # (ingestion/intake.py); 1 writes each request on its own.
    accept_batch: int = Field(64, ge=1, le=1000)

    @field_validator("queue_url")
    @classmethod
    def _queue_named(cls, url: str) -> str:
        return with_default_queue(url, QUEUE)
