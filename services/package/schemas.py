from __future__ import annotations

from pydantic import BaseModel, Field

from contracts.vocabulary import IsoDateTime, PackageSize, Weight


class PackageUpsert(BaseModel):
    size: PackageSize
    weight: Weight
    tag: str = Field("", max_length=256)
    ownerId: str | None = Field(None, min_length=1, max_length=128)
    # When ingestion accepted the request that sent it: an older write changes nothing.
    requestedAt: IsoDateTime | None = None


class PackagePatch(BaseModel):
    size: PackageSize | None = None
    weight: Weight | None = None
    tag: str | None = Field(None, max_length=256)


class Package(BaseModel):
    id: str
    size: PackageSize
    weight: float
    tag: str
    ownerId: str | None = None


class PackageSummary(BaseModel):
    totalWeight: float
