from __future__ import annotations

from pydantic import Field

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8084
    store_url: str = "sqlite:///data/dronescheduler.db"
    fleet_size: int = Field(20, ge=1, le=10_000)
    # Where the fleet is based; drones are spread on a grid around it.
    fleet_base_latitude: float = Field(47.6062, ge=-90, le=90)
    fleet_base_longitude: float = Field(-122.3321, ge=-180, le=180)
    # A booking claim older than this belongs to a booker that died: another call may take
    # it over (service.py). Lowered only by tests that freeze a replica past it.
    claim_stale_after_seconds: float = Field(30.0, gt=0, le=3600)
    # How long a replica books on what it knows of the fleet before listing it again
    # (fleet.py): a drone another replica freed may be passed over until then, never
    # double-booked (the drone's ETag decides).
    fleet_resync_seconds: float = Field(10.0, gt=0, le=3600)
    # Windows per page of a long schedule (pages.py): a booking writes the drone's document
    # and at most one page, whatever the backlog. 0 keeps each schedule whole in its drone's
    # document, as before pages (for a rolling upgrade from such a version: see CHANGELOG.md).
    schedule_page_windows: int = Field(16, ge=0, le=10_000)
