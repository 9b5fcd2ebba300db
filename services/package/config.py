from __future__ import annotations

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8083
    store_url: str = "sqlite:///data/package.db"
