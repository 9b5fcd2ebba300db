from __future__ import annotations

from pydantic import Field

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8085
    store_url: str = "sqlite:///data/delivery.db"
    # A confirmation's blob (a picture, a signature) may be up to a million characters.
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1, le=16 * 1024 * 1024)
