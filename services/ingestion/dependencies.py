from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingestion.intake import Intake


async def get_intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


IntakeDep = Annotated[Intake, Depends(get_intake)]
