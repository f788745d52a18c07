"""Runs: the seed's endpoints (start, read, update a phase's status) and the run list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import StrictBool

from autopack.api.deps import (
    ExecutorDep,
    PhaseId,
    RunCacheDep,
    RunId,
    SupervisorDep,
    in_writer_lane,
)
from autopack.api.json_body import JsonTextRoute
from autopack.api.run_cache import RunBodyCache
from autopack.api.schemas import (
    CommitOut,
    EventOut,
    IntegrationStatusOut,
    PhaseOut,
    RunBrief,
    RunOut,
    UpdateStatusRequest,
    UpdateStatusResponse,
)
from autopack.db.runs import PhaseStatusUpdate, RunView
from autopack.domain.errors import InvalidInput
from autopack.domain.states import RunState
from autopack.executors.threads import RunExecutor
from autopack.plan.load import spec_extras
from autopack.plan.spec import RunSpec
from autopack.project_config import load_project_config
from autopack.supervisor.engine import Engine, EngineOptions
from autopack.supervisor.incident import write_incident
from autopack.supervisor.service import Supervisor

router = APIRouter(prefix="/runs", tags=["runs"], route_class=JsonTextRoute)
ACTOR = "api"


def _json(model: UpdateStatusResponse) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


def _run_response(body: bytes, version: int, code: int = 200) -> Response:
    return Response(body, status_code=code, media_type="application/json",
                    headers={"ETag": f'"{version}"'})


def _serialize(view: RunView, cache: RunBodyCache) -> bytes:
    body = RunOut.of(view).model_dump_json().encode()
    cache.put(view.run.run_id, view.run.version, body)
    return body


class StartRequest(RunSpec):
    """A run spec; with `execute` (and a `repo`), the server also drives the run with the
    named builder and auditor until it ends (watch it with GET /runs/{id}, or block on
    GET /runs/{id}/wait)."""

    execute: StrictBool = False
    builder: str = "auto"
    auditor: str | None = None


@router.post("/start", response_model=RunOut, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "run_id already exists"},
                        413: {"description": "body too large"}})
async def start_run(request: Request, spec: StartRequest, supervisor: SupervisorDep,
                    cache: RunCacheDep, executor: ExecutorDep) -> Response:
    """Create a run with its tiers and phases; phases start QUEUED, the run PHASE_QUEUEING."""
    return await in_writer_lane(request, lambda: _start(spec, supervisor, cache, executor))


def _start(spec: StartRequest, supervisor: Supervisor, cache: RunBodyCache,
           executor: RunExecutor) -> Response:
    inputs = None
    if spec.execute:
        if spec.repo is None:
            raise InvalidInput("repo", "execute needs the repository to build in")
        extras = spec_extras(spec)
        # refuse what cannot be built or run here, before creating anything: the
        # project's autopack.toml, its isolation and Auditor, every phase's builder
        try:
            engine = Engine(supervisor, load_project_config(Path(spec.repo.path)),
                            EngineOptions(builder=spec.builder, auditor=spec.auditor,
                                          extras=extras))
            engine.check_new_run(spec)
        except InvalidInput as exc:
            raise InvalidInput(_body_field(spec, exc.where), exc.message) from None
        inputs = {"builder": spec.builder, "auditor": spec.auditor, "extras": extras,
                  "plan_dir": spec.repo.path, "executor": "server"}
    view = supervisor.create_run(spec, ACTOR, inputs=inputs)
    if inputs is not None:
        executor.submit(spec.run.run_id, inputs)
    return _run_response(_serialize(view, cache), view.run.version, status.HTTP_201_CREATED)


def _body_field(spec: StartRequest, where: str) -> str:
    """The body field a refusal of the engine's checks is about (they name the CLI's
    options and the plan's phases)."""
    if where in ("--builder", "--auditor"):
        return where.removeprefix("--")
    for position, phase in enumerate(spec.phases):
        if where == f"phase {phase.phase_id}":
            return f"phases[{position}].command"
    return where


@router.get("/{run_id}/wait", response_model=RunOut,
            responses={404: {"description": "unknown run"}})
async def wait_for_run(
    run_id: RunId, supervisor: SupervisorDep, executor: ExecutorDep, cache: RunCacheDep,
    timeout: Annotated[float, Query(gt=0, le=3600)] = 60,
) -> Response:
    """The run once it is terminal (or after `timeout` seconds, as it is then)."""
    await anyio.to_thread.run_sync(supervisor.get_run, run_id)  # 404 before waiting
    await executor.wait(run_id, timeout)
    view = await anyio.to_thread.run_sync(supervisor.get_run, run_id)
    return _run_response(_serialize(view, cache), view.run.version)


@router.get("", response_model=list[RunBrief])
def list_runs(
    supervisor: SupervisorDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[RunBrief]:
    """The newest runs first."""
    return [RunBrief.model_validate(r) for r in supervisor.list_runs(limit)]


@router.get("/{run_id}", response_model=RunOut,
            responses={304: {"description": "unchanged since the ETag in If-None-Match"},
                       404: {"description": "unknown run"}})
def get_run(
    run_id: RunId, supervisor: SupervisorDep, cache: RunCacheDep,
    if_none_match: Annotated[str | None, Header(max_length=8_192)] = None,
) -> Response:
    """A run with its tiers and phases. The ETag is the run's version."""
    version = supervisor.run_version(run_id)
    if if_none_match is not None and _matches(if_none_match, f'"{version}"'):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED,
                        headers={"ETag": f'"{version}"'})
    body = cache.get(run_id, version)
    if body is None:
        view = supervisor.get_run(run_id)
        version, body = view.run.version, _serialize(view, cache)
    return _run_response(body, version)


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match value matches `etag` (RFC 9110 §13.1.2: `*`, or a list of
    entity tags compared weakly, `W/"1"` matching `"1"`)."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


@router.get("/{run_id}/events", response_model=list[EventOut])
def list_events(run_id: RunId, supervisor: SupervisorDep) -> list[EventOut]:
    """The run's append-only log of state changes."""
    return [EventOut.model_validate(e) for e in supervisor.events(run_id)]


@router.get("/{run_id}/strategy", responses={404: {"description": "unknown run"}})
def run_strategy(run_id: RunId, supervisor: SupervisorDep) -> dict[str, Any]:
    """The run's strategy, frozen when it was created (as the strategy file)."""
    return supervisor.strategy(run_id)


@router.get("/{run_id}/integration_status", response_model=IntegrationStatusOut,
            responses={404: {"description": "unknown run"}})
def integration_status(run_id: RunId, supervisor: SupervisorDep) -> IntegrationStatusOut:
    """The run's integration branch: exists, commits since base, latest, ahead/behind main."""
    view = supervisor.get_run(run_id)
    found = supervisor.apply.status(run_id)
    if found is None:
        return IntegrationStatusOut(
            run_id=run_id, repo_path=None, branch=f"autopack/integration/{run_id}",
            exists=False, base_commit=None, commit_count=0, latest_commit=None,
            main_branch=None, ahead_of_main=0, behind_main=0)
    latest = None
    if found.latest_commit is not None:
        latest = CommitOut(sha=found.latest_commit, subject=found.latest_subject or "",
                           committed_at=found.latest_at or "")
    return IntegrationStatusOut(
        run_id=run_id, repo_path=view.run.repo_path, branch=found.branch, exists=found.exists,
        base_commit=found.base_commit, commit_count=found.commit_count, latest_commit=latest,
        main_branch=found.main_branch, ahead_of_main=found.ahead_of_main,
        behind_main=found.behind_main)


@router.post(
    "/{run_id}/phases/{phase_id}/update_status",
    response_model=UpdateStatusResponse,
    responses={404: {"description": "unknown run or phase"},
               409: {"description": "illegal transition; the body lists the allowed moves"}},
)
async def update_status(
    request: Request, run_id: RunId, phase_id: PhaseId, body: UpdateStatusRequest,
    supervisor: SupervisorDep,
) -> Response:
    """Move a phase to `state` (or report counters in its current state).

    The phase's tier and run roll forward with it; a run ends when every phase is
    terminal.
    """
    return await in_writer_lane(request, lambda: _update(run_id, phase_id, body, supervisor))


def _update(run_id: str, phase_id: str, body: UpdateStatusRequest,
            supervisor: Supervisor) -> Response:
    result, run = supervisor.update_phase_status(
        run_id, phase_id,
        PhaseStatusUpdate(body.state, body.builder_attempts, body.tokens_used,
                          body.minor_issues_count, body.major_issues_count, body.reason),
        ACTOR, external=True,
    )
    if RunState(result.run_state).is_failure:  # this change ended it: a terminal run
        write_incident(supervisor, run_id)    # refuses every change
    return _json(UpdateStatusResponse(
        run_id=run_id, phase_id=phase_id, tier_id=result.tier_id, state=result.phase_state,
        tier_state=result.tier_state, run_state=result.run_state,
        transitioned=result.transitioned, phase=PhaseOut.model_validate(run.phase(phase_id)),
    ))
