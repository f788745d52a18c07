"""Strategy: compile a plan's strategy without starting anything."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from autopack.api.deps import SupervisorDep
from autopack.api.json_body import JsonTextRoute
from autopack.domain.errors import InvalidInput
from autopack.plan.spec import RunSpec
from autopack.strategy.ruleset import parse_ruleset
from autopack.supervisor.apply import check_git_ids

router = APIRouter(prefix="/strategy", tags=["strategy"], route_class=JsonTextRoute)


class DryRunRequest(BaseModel):
    """A plan (the body of POST /runs/start) and, optionally, a ruleset to use instead of
    the configured one."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    plan: RunSpec
    ruleset: dict[str, Any] | None = None


@router.post("/dry_run", responses={422: {"description": "bad plan or ruleset (field named)"}})
def dry_run(request: DryRunRequest, supervisor: SupervisorDep) -> dict[str, Any]:
    """The strategy the plan would get now (as `project_implementation_strategy_vN.json`)."""
    if request.plan.repo is not None:  # as POST /runs/start would refuse it
        try:
            check_git_ids(request.plan)
        except InvalidInput as exc:
            raise InvalidInput(f"plan.{exc.where}", exc.message) from None
    ruleset = None
    if request.ruleset is not None:
        ruleset = (parse_ruleset(request.ruleset, "ruleset"), "request")
    return supervisor.dry_run(request.plan, ruleset)
