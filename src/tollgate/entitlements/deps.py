"""What routes of other domains need of entitlements, as FastAPI dependencies."""

from typing import Annotated

from fastapi import Depends

from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.http.components import component

Snapshots = Annotated[SnapshotStore, Depends(component(SnapshotStore))]
