from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis.documents import DocumentStore
from chassis.stores import collection_dependency
from dronescheduler.service import ASSIGNMENTS, DRONES

DronesDep = Annotated[DocumentStore, Depends(collection_dependency(DRONES))]
AssignmentsDep = Annotated[DocumentStore, Depends(collection_dependency(ASSIGNMENTS))]
