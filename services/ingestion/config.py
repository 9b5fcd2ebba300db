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
    # Concurrent accepts share a store call and a queue call, up to this many at a time
    # (ingestion/intake.py); 1 writes each request on its own.
    accept_batch: int = Field(64, ge=1, le=1000)

    @field_validator("queue_url")
    @classmethod
    def _queue_named(cls, url: str) -> str:
        return with_default_queue(url, QUEUE)
