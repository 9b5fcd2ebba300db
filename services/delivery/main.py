"""Composition root: the store named by the settings, wired into the routes."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.stores import open_collections
from contracts.routes import routed_to
from delivery import console, pages
from delivery.config import Settings
from delivery.router import router
from delivery.service import DELIVERIES

SERVICE = "delivery"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        name=SERVICE,
        summary="Delivery state and tracking.",
        routers=[router, console.router, pages.router],
        settings=settings,
        is_public=routed_to(SERVICE),
        resources=open_collections(settings.store_url, DELIVERIES),
    )
