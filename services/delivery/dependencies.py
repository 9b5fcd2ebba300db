from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis.documents import DocumentStore
from chassis.stores import collection_dependency
from delivery.service import DELIVERIES

StoreDep = Annotated[DocumentStore, Depends(collection_dependency(DELIVERIES))]
