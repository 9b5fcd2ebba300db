"""Composition root: queue, downstream clients, the workflow and its consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.health import Phase
from chassis.http import Resilience, ServiceClient
from chassis.queue import QueueOptions, connect_message_queue
from chassis.telemetry import MessagingTarget
from gateway.routes import routed_to
from workflow import console
from workflow.config import Settings
from workflow.consumer import Consumer
from workflow.locations import ServiceArea
from workflow.router import router
from workflow.service import DeliveryWorkflow, Downstreams

SERVICE = "workflow"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def client(name: str, url: str) -> ServiceClient:
        return ServiceClient(
            name,
            url,
            timeout_seconds=settings.http_timeout_seconds,
            attempts=settings.http_retry_attempts,
            max_wait_seconds=settings.http_retry_max_wait_seconds,
            max_connections=settings.workflow_concurrency,
            resilience=Resilience(
                breaker_threshold=settings.breaker_failure_threshold,
                breaker_recovery_seconds=settings.breaker_recovery_seconds,
                bulkhead_max_concurrent=settings.bulkhead_max_concurrent,
                bulkhead_max_wait_seconds=settings.bulkhead_max_wait_seconds,
            ),
        )

    @asynccontextmanager
    async def resources(app: FastAPI) -> AsyncIterator[None]:
        options = QueueOptions(
            lock_seconds=settings.queue_lock_seconds,
            max_delivery_count=settings.queue_max_delivery_count,
            prefetch=settings.queue_prefetch,
        )
        queue = await connect_message_queue(settings.queue_url, options)
        downstreams = Downstreams(
            package=client("package", settings.package_url),
            dronescheduler=client("dronescheduler", settings.dronescheduler_url),
            delivery=client("delivery", settings.delivery_url),
        )
        workflow = DeliveryWorkflow(
            downstreams,
            ServiceArea(
                settings.service_area_latitude,
                settings.service_area_longitude,
                settings.service_area_radius_miles,
            ),
            max_deliveries=settings.queue_max_delivery_count,
        )
        consumer = Consumer(
            queue,
            workflow.handle,
            concurrency=settings.workflow_concurrency,
            lock_seconds=settings.queue_lock_seconds,
            hold_seconds=settings.queue_hold_seconds,
            accepting=lambda: app.state.health.phase is not Phase.DRAINING,
            target=MessagingTarget.from_queue_url(settings.queue_url),
        )
        app.state.consumer = consumer
        # For the console: the queue's depth, the area its map draws.
        app.state.queue = queue
        app.state.service_area = ServiceArea(
            settings.service_area_latitude,
            settings.service_area_longitude,
            settings.service_area_radius_miles,
        )
        app.state.downstreams = downstreams
        app.state.health.add_liveness_check(
            "consumer", lambda: consumer.stalled_for() < settings.liveness_stall_seconds
        )
        running = asyncio.create_task(consumer.run())
        try:
            yield
        finally:
            await consumer.stop(settings.shutdown_grace_seconds)
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            await downstreams.aclose()
            await queue.close()

    return create_service_app(
        name=SERVICE,
        summary="Carries delivery requests from the queue to package, drone scheduler, delivery.",
        routers=[router, console.router],
        settings=settings,
        is_public=routed_to(SERVICE),
        resources=resources,
    )
