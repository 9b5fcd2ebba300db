"""Composition root: the store named by the settings, wired into the routes."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.stores import open_collections
from package.config import Settings
from package.router import router
from package.service import PACKAGES

SERVICE = "package"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        name=SERVICE,
        summary="Packages and their weights.",
        routers=[router],
        settings=settings,
        resources=open_collections(settings.store_url, PACKAGES),
    )
