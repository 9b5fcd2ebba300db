from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chassis.documents import DocumentStore
from chassis.queue import MessageQueue
from chassis.stores import collection_dependency
from chassis.telemetry import MessagingTarget
from ingestion.service import DELIVERY_REQUESTS


async def get_queue(request: Request) -> MessageQueue:
    queue: MessageQueue = request.app.state.queue
    return queue


QueueDep = Annotated[MessageQueue, Depends(get_queue)]


async def get_queue_target(request: Request) -> MessagingTarget:
    target: MessagingTarget = request.app.state.queue_target
    return target


QueueTargetDep = Annotated[MessagingTarget, Depends(get_queue_target)]


StoreDep = Annotated[DocumentStore, Depends(collection_dependency(DELIVERY_REQUESTS))]
