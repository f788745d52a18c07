"""Typed dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, Path, Request

from autopack.api.run_cache import RunBodyCache
from autopack.domain.ids import ID_PATTERN
from autopack.executors.threads import RunExecutor
from autopack.supervisor.service import Supervisor


async def get_supervisor(request: Request) -> Supervisor:
    """The app's Supervisor (async: no thread hop for a lookup)."""
    supervisor: Supervisor = request.app.state.supervisor
    return supervisor


async def get_run_cache(request: Request) -> RunBodyCache:
    """The app's cache of serialized runs."""
    cache: RunBodyCache = request.app.state.run_cache
    return cache


async def get_executor(request: Request) -> RunExecutor:
    """The app's run executor (thread pool)."""
    executor: RunExecutor = request.app.state.executor
    return executor


T = TypeVar("T")


async def in_writer_lane(request: Request, change: Callable[[], T]) -> T:
    """Run `change` (a request that changes state) on the writer lane: a worker thread,
    with at most `AUTOPACK_API_WRITERS` at once (default 1 on SQLite, 4 on PostgreSQL).

    The work is Python-bound and SQLite takes one writer at a time: eight threads racing
    for the interpreter lock did the same work slower (more time in the kernel switching)
    than one thread in turn. PostgreSQL gains from a few at once, whose commits overlap
    their WAL flushes. Reads keep the shared thread pool, so writes never delay them.
    """
    limiter: anyio.CapacityLimiter = request.app.state.write_lane
    return await anyio.to_thread.run_sync(change, limiter=limiter)


ExecutorDep = Annotated[RunExecutor, Depends(get_executor)]
SupervisorDep = Annotated[Supervisor, Depends(get_supervisor)]
RunCacheDep = Annotated[RunBodyCache, Depends(get_run_cache)]
RunId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
PhaseId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
