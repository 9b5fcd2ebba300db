"""The console's and the tracking page's files (services/delivery/web), served as they are.

Plain HTML, ES modules and CSS, no build step and nothing from the internet: the Content
Security Policy lets a page load only this origin's files and call only this origin's API.
Delivery serves them because it is public on every footing and owns what the tracking page
shows; the route table names each path (contracts/routes.py), so nothing else is reachable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from contracts.routes import ASSET
from contracts.vocabulary import ResourceId

WEB = Path(__file__).parent / "web"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A few small files: fetched again at each load, so a new release shows at once.
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

router = APIRouter(include_in_schema=False)


def _file(name: str, media_type: str) -> FileResponse:
    return FileResponse(WEB / name, media_type=media_type, headers=HEADERS)


@router.get("/console")
async def console_page() -> FileResponse:
    return _file("console.html", "text/html; charset=utf-8")


@router.get("/console/{asset}")
async def console_asset(asset: str) -> FileResponse:
    path = WEB / asset
    if not re.fullmatch(ASSET, asset) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no console file {asset!r}")
    return _file(asset, MEDIA_TYPES[path.suffix])


@router.get("/track/{deliveryId}")
async def tracking_page(deliveryId: Annotated[ResourceId, PathParam()]) -> FileResponse:
    # The page reads the id from its own address; the data needs the owner's token.
    return _file("track.html", "text/html; charset=utf-8")
