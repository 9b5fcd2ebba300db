from __future__ import annotations

from pydantic import field_validator

from chassis.queue import with_default_queue
from chassis.settings import ServiceSettings
from contracts.messages import QUEUE


class Settings(ServiceSettings):
    port: int = 8081
    queue_url: str = f"sqlite:///data/queue.db?queue={QUEUE}"
    # Its record of accepted requests: idempotency keys, and which ids it issued.
    store_url: str = "sqlite:///data/ingestion.db"

    @field_validator("queue_url")
    @classmethod
    def _queue_named(cls, url: str) -> str:
        return with_default_queue(url, QUEUE)
