from __future__ import annotations

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8085
    store_url: str = "sqlite:///data/delivery.db"
