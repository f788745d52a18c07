"""The FastAPI application: routers, error mapping, body limit, lifespan."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

from autopack import __version__
from autopack.api.limits import BodySizeLimit
from autopack.api.openapi import openapi_document
from autopack.api.request_rules import RequestRules
from autopack.api.routers import health, issues, runs, strategy
from autopack.api.run_cache import RunBodyCache
from autopack.db.database import DatabaseUnavailable
from autopack.domain.errors import (
    AutopackError,
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    PolicyViolation,
)
from autopack.domain.problems import FieldProblems, dotted
from autopack.executors.threads import RunExecutor
from autopack.settings import Settings
from autopack.supervisor.service import Supervisor

_STATUS = (
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (PolicyViolation, 422),
    (DatabaseUnavailable, 503),
)


async def _autopack_error(_request: Request, exc: Exception) -> JSONResponse:
    """The one place an AutopackError becomes an HTTP answer."""
    code = next((c for kind, c in _STATUS if isinstance(exc, kind)), 500)
    body: dict[str, object] = {"detail": str(exc)}
    if code == 422:
        body["field"] = exc.where if isinstance(exc, InvalidInput) else None
    if isinstance(exc, IllegalTransition):
        body.update(current=exc.current, target=exc.target, allowed=exc.allowed)
    return JSONResponse(_sendable(body), status_code=code)


_SOURCES = ("body", "query", "path", "header", "cookie")


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 (`detail`: one entry per problem, each with its `loc`), with every
    problem a model validator found together at its own location, and `field` naming the
    first, as every 422 does."""
    assert isinstance(exc, RequestValidationError)
    detail: list[dict[str, object]] = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblems):
            detail.extend({"type": "value_error", "loc": [*error["loc"], *loc], "msg": msg}
                          for loc, msg in cause.problems)
        else:
            detail.append(jsonable_encoder(error))
    first = tuple(detail[0]["loc"]) if detail else ()  # type: ignore[arg-type]
    inner = first[1:] if first and first[0] in _SOURCES else first
    if inner and isinstance(inner[0], int):  # a position in the body's text: not a field
        inner = ()
    field = dotted(inner) or (str(first[0]) if first else None)
    return JSONResponse(_sendable({"detail": detail, "field": field}), status_code=422)


def _sendable(value: object) -> object:
    """`value` with what an error may echo from its input and JSON text cannot hold made
    printable: NaN and Infinity as strings, a lone surrogate (a `\\ud800` escape decodes
    to one) as its escape."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [_sendable(v) for v in value]
    if isinstance(value, dict):
        return {_sendable(k): _sendable(v) for k, v in value.items()}
    return value


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app over the given settings (or the environment's)."""
    settings = settings or Settings()
    supervisor = Supervisor(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor.start()
        app.state.supervisor = supervisor
        app.state.run_cache = RunBodyCache(settings.run_cache_size)
        app.state.write_lane = anyio.CapacityLimiter(
            settings.api_writers or (1 if supervisor.db.is_sqlite else 4))
        app.state.executor = RunExecutor(supervisor, settings.run_workers)
        app.state.executor.resume_unfinished()
        yield
        app.state.executor.shutdown()
        supervisor.close()

    app = FastAPI(
        title="Autopack",
        version=__version__,
        summary="Supervisor for zero-intervention autonomous software builds",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestRules)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts,
                       www_redirect=False)
    app.add_exception_handler(AutopackError, _autopack_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(health.router)
    app.include_router(runs.router)
    app.include_router(issues.router)
    app.include_router(strategy.router)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app
