from __future__ import annotations

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8081
    queue_url: str = "sqlite:///data/queue.db?queue=deliveryrequests"
    # Its record of accepted requests: idempotency keys, and which ids it issued.
    store_url: str = "sqlite:///data/ingestion.db"
