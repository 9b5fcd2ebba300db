from __future__ import annotations

from pydantic import Field

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8080
    ingestion_url: str = "http://127.0.0.1:8081"
    delivery_url: str = "http://127.0.0.1:8085"
    # The console's read-only views of the fleet and the pipeline (docs/console.md).
    dronescheduler_url: str = "http://127.0.0.1:8084"
    workflow_url: str = "http://127.0.0.1:8082"
    upstream_timeout_seconds: float = Field(30.0, gt=0)
    upstream_connections: int = Field(200, ge=1)
