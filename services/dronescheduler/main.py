"""Composition root: the stores named by the settings, the fleet, and the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.stores import open_collections
from contracts.routes import routed_to
from dronescheduler import console
from dronescheduler.config import Settings
from dronescheduler.models import Location
from dronescheduler.pages import PAGES, PagedDrones
from dronescheduler.router import router
from dronescheduler.service import ASSIGNMENTS, DRONES, ensure_fleet

SERVICE = "dronescheduler"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    stores = open_collections(settings.store_url, DRONES, ASSIGNMENTS, PAGES)

    @asynccontextmanager
    async def resources(app: FastAPI) -> AsyncIterator[None]:
        async with stores(app):
            # Drones are read and written with their schedule's pages (it closes both).
            app.state.stores[DRONES.name] = PagedDrones(
                app.state.stores[DRONES.name],
                app.state.stores.pop(PAGES.name),
                page=settings.schedule_page_windows,
            )
            await ensure_fleet(
                drones=app.state.stores[DRONES.name],
                size=settings.fleet_size,
                base=Location(settings.fleet_base_latitude, settings.fleet_base_longitude),
            )
            yield

    return create_service_app(
        name=SERVICE,
        summary="Keeps the fleet and assigns drones to deliveries.",
        routers=[router, console.router],
        settings=settings,
        is_public=routed_to(SERVICE),
        resources=resources,
    )
