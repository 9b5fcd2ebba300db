from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chassis.queue import MessageQueue


def get_queue(request: Request) -> MessageQueue:
    queue: MessageQueue = request.app.state.queue
    return queue


QueueDep = Annotated[MessageQueue, Depends(get_queue)]
