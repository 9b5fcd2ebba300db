"""Composition root: the queue adapter named by the settings, wired into the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.queue import QueueOptions, connect_message_queue
from chassis.stores import open_collections
from chassis.telemetry import MessagingTarget
from contracts.routes import routed_to
from ingestion.config import Settings
from ingestion.intake import Intake
from ingestion.router import router
from ingestion.service import DELIVERY_REQUESTS

SERVICE = "ingestion"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    stores = open_collections(settings.store_url, DELIVERY_REQUESTS)

    @asynccontextmanager
    async def resources(app: FastAPI) -> AsyncIterator[None]:
        async with stores(app):
            # Adapters wait for their server themselves (chassis/startup.py), bounded.
            queue = await connect_message_queue(
                settings.queue_url,
                QueueOptions(max_delivery_count=settings.queue_max_delivery_count),
            )
            app.state.intake = Intake(
                queue=queue,
                store=app.state.stores[DELIVERY_REQUESTS.name],
                target=MessagingTarget.from_queue_url(settings.queue_url),
                max_batch=settings.accept_batch,
            )
            try:
                yield
            finally:
                await app.state.intake.close()
                await queue.close()

    app = create_service_app(
        name=SERVICE,
        summary="Accepts delivery requests and queues them for workflow.",
        routers=[router],
        settings=settings,
        is_public=routed_to(SERVICE),
        resources=resources,
    )
    return app
