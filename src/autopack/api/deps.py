"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from autopack.domain.ids import ID_PATTERN
from autopack.supervisor.service import Supervisor


async def get_supervisor(request: Request) -> Supervisor:
    """The app's Supervisor (async: no thread hop for a lookup)."""
    supervisor: Supervisor = request.app.state.supervisor
    return supervisor


SupervisorDep = Annotated[Supervisor, Depends(get_supervisor)]
RunId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
PhaseId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
