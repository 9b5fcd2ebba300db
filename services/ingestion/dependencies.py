from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingestion.intake import Intake


def intake_of(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


async def get_intake(request: Request) -> Intake:
    return intake_of(request)


IntakeDep = Annotated[Intake, Depends(get_intake)]
