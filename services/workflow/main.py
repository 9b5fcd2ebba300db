"""Composition root: queue, downstream clients, the workflow and its consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.health import Phase
from chassis.http import Resilience, ServiceClient
from chassis.queue import MessageQueue, QueueOptions, connect_message_queue
from chassis.telemetry import MessagingTarget
from contracts.routes import routed_to
from workflow import console
from workflow.config import Settings
from workflow.consumer import Consumer
from workflow.locations import ServiceArea
from workflow.router import router
from workflow.service import DeliveryWorkflow, Downstreams
from workflow.stages import Gatherer

SERVICE = "workflow"


def service_client(settings: Settings, name: str, url: str) -> ServiceClient:
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


def downstreams_of(settings: Settings) -> Downstreams:
    return Downstreams(
        package=service_client(settings, "package", settings.package_url),
        dronescheduler=service_client(settings, "dronescheduler", settings.dronescheduler_url),
        delivery=service_client(settings, "delivery", settings.delivery_url),
    )


def workflow_of(settings: Settings, downstreams: Downstreams) -> DeliveryWorkflow:
    area = ServiceArea(
        settings.service_area_latitude,
        settings.service_area_longitude,
        settings.service_area_radius_miles,
    )
    return DeliveryWorkflow(downstreams, area, max_deliveries=settings.queue_max_delivery_count)


def consumer_of(
    settings: Settings,
    queue: MessageQueue,
    workflow: DeliveryWorkflow,
    accepting: Callable[[], bool],
) -> Consumer:
    """The consumer, handing each message to the workflow through a batch of its peers."""
    gatherer = Gatherer(
        workflow.batch,
        workflow.handle,
        max_size=settings.workflow_batch_size,
        gather_seconds=settings.workflow_gather_seconds,
    )
    return Consumer(
        queue,
        gatherer.handle,
        concurrency=settings.workflow_concurrency,
        lock_seconds=settings.queue_lock_seconds,
        hold_seconds=settings.queue_hold_seconds,
        accepting=accepting,
        target=MessagingTarget.from_queue_url(settings.queue_url),
    )


async def connect_queue(settings: Settings) -> MessageQueue:
    options = QueueOptions(
        lock_seconds=settings.queue_lock_seconds,
        max_delivery_count=settings.queue_max_delivery_count,
        prefetch=settings.queue_prefetch,
    )
    return await connect_message_queue(settings.queue_url, options)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def resources(app: FastAPI) -> AsyncIterator[None]:
        queue = await connect_queue(settings)
        downstreams = downstreams_of(settings)
        consumer = consumer_of(
            settings,
            queue,
            workflow_of(settings, downstreams),
            accepting=lambda: app.state.health.phase is not Phase.DRAINING,
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
