from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from chassis.batches import Batch, BatchResults, ItemResult, item_error, merged, validated
from contracts.vocabulary import ResourceId
from package import service
from package.dependencies import StoreDep
from package.schemas import Package, PackagePatch, PackageSummary, PackageUpsert, PackageWrite

router = APIRouter(prefix="/api/packages", tags=["packages"])

PackageId = Annotated[ResourceId, Path()]


def _not_found(package_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no package {package_id!r}")


@router.get("/summary/{ownerId}", response_model=PackageSummary)
async def package_summary(
    ownerId: Annotated[str, Path(max_length=128)], store: StoreDep
) -> PackageSummary:
    return await service.summary(store=store, owner_id=ownerId)


@router.post("/batch", response_model=BatchResults)
async def put_packages(batch: Batch, store: StoreDep) -> Response:
    """Internal: each item as PUT /api/packages/{its packageId} with the rest as the body,
    the new ones written in one store call, each with its own answer."""
    checked = validated(PackageWrite, batch.items)
    writes = [c for c in checked if isinstance(c, PackageWrite)]
    outcomes = await service.upsert_many(store=store, writes=writes)
    answered = [_upserted(w, o) for w, o in zip(writes, outcomes, strict=True)]
    return merged(checked, answered)


def _upserted(write: PackageWrite, outcome: bool | Exception) -> ItemResult:
    if isinstance(outcome, Exception):
        return item_error(outcome)
    if outcome:
        return ItemResult(status=201, body=_created(write.packageId, write).model_dump(mode="json"))
    return ItemResult(status=204)


def _created(package_id: str, data: PackageUpsert) -> Package:
    return Package(id=package_id, **data.model_dump(include={"size", "weight", "tag", "ownerId"}))


@router.put(
    "/{packageId}",
    status_code=status.HTTP_201_CREATED,
    response_model=Package,
    responses={204: {"description": "updated"}},
)
async def put_package(
    packageId: PackageId, data: PackageUpsert, store: StoreDep
) -> Package | Response:
    created = await service.upsert(store=store, package_id=packageId, data=data)
    if not created:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _created(packageId, data)


OwnerId = Annotated[
    str | None,
    Query(min_length=1, max_length=128, description="whose package: ids are per owner"),
]


@router.get("/{packageId}", response_model=Package)
async def get_package(packageId: PackageId, store: StoreDep, ownerId: OwnerId = None) -> Package:
    package = await service.get(store=store, package_id=packageId, owner_id=ownerId)
    if package is None:
        raise _not_found(packageId)
    return package


@router.patch("/{packageId}", status_code=status.HTTP_204_NO_CONTENT)
async def patch_package(
    packageId: PackageId, data: PackagePatch, store: StoreDep, ownerId: OwnerId = None
) -> Response:
    if not await service.patch(store=store, package_id=packageId, owner_id=ownerId, data=data):
        raise _not_found(packageId)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
