from __future__ import annotations

from pydantic import Field, field_validator

from chassis.queue import with_default_queue
from chassis.settings import ServiceSettings
from contracts.messages import QUEUE


class Settings(ServiceSettings):
    port: int = 8082
    queue_url: str = f"sqlite:///data/queue.db?queue={QUEUE}"
    package_url: str = "http://127.0.0.1:8083"
    dronescheduler_url: str = "http://127.0.0.1:8084"
    delivery_url: str = "http://127.0.0.1:8085"
    # Messages worked on at once, and how many the queue may hand over ahead of time
    # (RabbitMQ; Service Bus prefetches nothing: see chassis/queue/servicebus.py).
    workflow_concurrency: int = Field(16, ge=1, le=1000)
    queue_prefetch: int = Field(32, ge=0, le=10_000)
    queue_lock_seconds: float = Field(30.0, gt=0)
    queue_max_delivery_count: int = Field(10, ge=1, le=2000)
    # A message whose downstream is out is tried again in place for this long before it is
    # handed back to the queue (which counts a delivery): see workflow/consumer.py.
    queue_hold_seconds: float = Field(60.0, ge=0, le=3600)
    # Liveness fails when the consumer loop has made no progress for this long.
    liveness_stall_seconds: float = Field(120.0, gt=0)
    # Free-text addresses are placed within this area (see workflow/locations.py).
    service_area_latitude: float = Field(47.6062, ge=-90, le=90)
    service_area_longitude: float = Field(-122.3321, ge=-180, le=180)
    service_area_radius_miles: float = Field(10.0, gt=0)

    @field_validator("queue_url")
    @classmethod
    def _queue_named(cls, url: str) -> str:
        return with_default_queue(url, QUEUE)
