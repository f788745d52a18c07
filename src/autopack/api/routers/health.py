"""GET /health."""

from __future__ import annotations

from fastapi import APIRouter

from autopack import __version__
from autopack.api.json_body import JsonTextRoute
from autopack.api.schemas import Health

router = APIRouter(tags=["health"], route_class=JsonTextRoute)


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the server answers."""
    return Health(status="ok", version=__version__)
