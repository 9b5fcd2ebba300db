from __future__ import annotations

from pydantic import BaseModel, Field

from contracts.calls import PackageUpsert, PackageWrite
from contracts.vocabulary import PackageSize, Weight

__all__ = ["Package", "PackagePatch", "PackageSummary", "PackageUpsert", "PackageWrite"]


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
