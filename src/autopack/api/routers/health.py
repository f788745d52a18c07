"""GET /health."""

from __future__ import annotations

from fastapi import APIRouter

from autopack import __version__
from autopack.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the server answers."""
    return Health(status="ok", version=__version__)
