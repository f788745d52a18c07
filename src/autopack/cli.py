"""The `autopack` command (Typer). Errors are caught once, in `main`."""

from __future__ import annotations

import getpass
import ipaddress
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.table import Table
from rich.text import Text  # names are the user's text, never markup
from sqlalchemy.engine import make_url
from typer.rich_utils import rich_format_error

from autopack import __version__
from autopack.api.schemas import RunBrief, RunOut
from autopack.artefacts.atomic import write_text_atomic
from autopack.ci.preflight import run_preflight
from autopack.ci.promotion_check import check_run_dir
from autopack.domain.categories import RunScope, SafetyProfile
from autopack.domain.errors import AutopackError, InvalidInput, NotFound
from autopack.domain.states import RunState
from autopack.issues.documents import backlog_entry
from autopack.plan.load import load_plan
from autopack.plan.spec import RunSpec
from autopack.progress import Progress
from autopack.project_config import ProjectConfig, load_project_config
from autopack.settings import Settings, not_a_folder
from autopack.strategy.engine import to_json as strategy_json
from autopack.strategy.ruleset import Ruleset, load_ruleset, ruleset_schema
from autopack.supervisor.apply import PromotionRefused, check_git_ids
from autopack.supervisor.demo import prepare_demo_repository
from autopack.supervisor.engine import Engine, EngineOptions, run_report
from autopack.supervisor.incident import write_incident
from autopack.supervisor.parts import ChainResult, chain_of, drive_parts, split_spec
from autopack.supervisor.repo_setup import exclude_file, keep_out_of_git
from autopack.supervisor.service import Supervisor, compile_for

app = typer.Typer(
    name="autopack",
    help="Supervisor for zero-intervention autonomous software builds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages are never cut across lines
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "AUTOPACK_" + "__".join(str(p) for p in first["loc"]).upper()
        raise InvalidInput(key, first["msg"]) from exc
    except SettingsError as exc:  # a structured setting whose value is not JSON
        field = re.search(r'field "([^"]+)"', str(exc))
        prefix = f"AUTOPACK_{field.group(1)}".upper() if field else "AUTOPACK_"
        raise InvalidInput(_not_json(prefix), "not valid JSON (a list or a section takes a "
                           "JSON value; or set one key per variable, e.g. "
                           "AUTOPACK_BUDGETS__RUN__TOKEN_CAP=2000000)") from exc


def _not_json(prefix: str) -> str:
    """The first AUTOPACK_ variable under `prefix` whose value does not parse as JSON."""
    for name, value in sorted(os.environ.items()):
        if name.upper() == prefix or name.upper().startswith(f"{prefix}__"):
            try:
                json.loads(value)
            except ValueError:
                return name
    return prefix


def _check_folder(option: str, path: Path) -> None:
    """Refuse a folder that is a file, or lies under one."""
    blocked = not_a_folder(path)
    if blocked is not None:
        raise InvalidInput(option, f"{blocked} is not a folder")


def _database_missing(settings: Settings) -> bool:
    """True when the embedded database file does not exist (nothing ran here yet)."""
    url = make_url(settings.database_url)
    return (url.get_backend_name() == "sqlite" and bool(url.database)
            and url.database != ":memory:" and not Path(url.database or "").exists())


def _reader() -> Supervisor | None:
    """A Supervisor for read-only commands, or None when there is no database yet."""
    settings = _settings()
    if _database_missing(settings):
        return None
    supervisor = Supervisor(settings)
    supervisor.start()
    return supervisor


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to bind.")] = 8000,
) -> None:
    """Serve the API (OpenAPI at /docs) on the configured database."""
    import uvicorn

    from autopack.api.app import create_app

    if not _is_loopback(host):
        raise InvalidInput(
            "--host", f"{host} is not a loopback address; serving beyond this machine "
            "needs API keys, which this version does not have"
        )
    settings = _settings()
    err.print(f"autopack {__version__}: database {make_url(settings.database_url)!r}, "
              f"runs folder {settings.runs_dir}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def status(run_id: str, as_json: JsonFlag = False) -> None:
    """Show one run: its state, budgets, tiers and phases."""
    supervisor = _reader()
    if supervisor is None:
        raise NotFound("run", run_id)
    try:
        run = RunOut.of(supervisor.get_run(run_id))
    finally:
        supervisor.close()
    if as_json:
        print(run.model_dump_json(indent=2))
        return
    out.print(f"[bold]Run {run.run_id}[/bold]  {run.state.value}"
              + (f"  ({run.failure_reason})" if run.failure_reason else ""))
    out.print(f"tokens {run.tokens_used}/{run.token_cap}  CI runs {run.ci_runs_used}  "
              f"issues minor {run.minor_issues_count} major {run.major_issues_count}  "
              f"{run.safety_profile}, {run.run_scope}")
    tiers = Table("#", "tier", "name", "state", "tokens")
    for tier in run.tiers:
        tiers.add_row(str(tier.tier_index), tier.tier_id, Text(tier.name), tier.state.value,
                      f"{tier.tokens_used}/{tier.token_cap}")
    out.print(tiers)
    phases = Table("#", "phase", "tier", "name", "state", "attempts", "tokens")
    for phase in run.phases:
        phases.add_row(str(phase.phase_index), phase.phase_id, phase.tier_id, Text(phase.name),
                       phase.state.value, str(phase.builder_attempts), str(phase.tokens_used))
    out.print(phases)


@app.command("runs")
def list_runs(
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs.")] = 100,
) -> None:
    """List runs, newest first."""
    supervisor = _reader()
    rows: list[RunBrief] = []
    if supervisor is not None:
        try:
            rows = [RunBrief.model_validate(r) for r in supervisor.list_runs(limit)]
        finally:
            supervisor.close()
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table("run", "state", "failure", "debt", "profile", "scope", "tokens", "CI runs",
                  "created")
    for r in rows:
        table.add_row(r.run_id, r.state.value, r.failure_reason or "", r.debt_status,
                      r.safety_profile, r.run_scope, str(r.tokens_used), str(r.ci_runs_used),
                      r.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table if rows else "no runs")


@app.command("issues")
def run_issues(run_id: str, as_json: JsonFlag = False) -> None:
    """Show a run's issue index: each issue key, its severity, occurrences and phases."""
    supervisor = _reader()
    if supervisor is None:
        raise NotFound("run", run_id)
    try:
        index = supervisor.issue_index(run_id)
    finally:
        supervisor.close()
    if as_json:
        print(json.dumps(index, indent=2, sort_keys=True))
        return
    out.print(f"[bold]Run {run_id}[/bold]  minor {index['minor_issue_count']}  major "
              f"{index['major_issue_count']}  debt {index['debt_status']}")
    table = Table("issue key", "severity", "effective", "source", "category", "seen",
                  "phases", "tiers")
    for key, issue in index["issues_by_key"].items():
        table.add_row(key, issue["severity"], issue["effective_severity"], issue["source"],
                      issue["category"], str(issue["occurrence_count"]),
                      ", ".join(issue["seen_in_phases"]), ", ".join(issue["seen_in_tiers"]))
    out.print(table if index["issues_by_key"] else "no issues")


report = typer.Typer(help="Reports over runs and issues.", no_args_is_help=True)
app.add_typer(report, name="report")


@report.command("backlog")
def report_backlog(
    as_json: JsonFlag = False,
    project: Annotated[str, typer.Option(help="Project id.")] = "default",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many keys.")] = 20,
) -> None:
    """Top backlog keys by seen_in_runs, seen_in_tiers and occurrence_count."""
    supervisor = _reader()
    if supervisor is None:
        raise NotFound("project", project)
    try:
        rows = [backlog_entry(r) for r in supervisor.top_backlog(project, limit)]
    finally:
        supervisor.close()
    if as_json:
        print(json.dumps({"project_id": project, "issues": rows}, indent=2))
        return
    table = Table("issue key", "status", "severity", "runs", "tiers", "seen", "age (runs)",
                  "last run")
    for r in rows:
        table.add_row(r["issue_key"], r["status"], r["base_severity"], str(r["seen_in_runs"]),
                      str(r["seen_in_tiers"]), str(r["occurrence_count"]),
                      str(r["age_in_runs"]), r["last_seen_run_id"])
    out.print(table if rows else "no issues")


@app.command()
def regenerate(run_id: str) -> None:
    """Rewrite a run's .autonomous_runs/ files from the database (a failed run's
    incident pack too)."""
    supervisor = _reader()
    if supervisor is None:
        raise NotFound("run", run_id)
    try:
        view = supervisor.regenerate(run_id)
        if RunState(view.run.state).is_failure:
            write_incident(supervisor, run_id)
        err.print(f"wrote {supervisor.artefacts.layout(run_id).root}")
    finally:
        supervisor.close()


@app.command("run")
def run_plan(
    plan: Path,
    repo: Annotated[Path, typer.Option(help="The repository to build in.")] = Path("."),
    builder: Annotated[str, typer.Option(help="auto, command or patch.")] = "auto",
    auditor: Annotated[str | None, typer.Option(help="none or command.")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="The run id.")] = None,
    safety_profile: Annotated[SafetyProfile | None, typer.Option()] = None,
    run_scope: Annotated[RunScope | None, typer.Option()] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a plan to a terminal state with no one in the loop. Exit 0 on DONE_SUCCESS,
    1 on DONE_FAILED_*, 2 on bad input (the message names file:line or the key)."""
    doc, settings = _execute_plan(plan, repo, builder, auditor, run_id, safety_profile,
                                  run_scope)
    _report_run(doc, settings, as_json)


def _execute_plan(
    plan: Path, repo: Path, builder: str, auditor: str | None, run_id: str | None,
    safety_profile: SafetyProfile | None, run_scope: RunScope | None,
) -> tuple[dict[str, Any], Settings]:
    """Create the run of `plan` in `repo` and drive it to a terminal state. Everything
    the input decides is checked before anything is written (no database, no folder,
    no exclude line for a refused plan)."""
    _check_repository(repo)
    repo = repo.resolve()
    config = load_project_config(repo)
    loaded = load_plan(plan, run_id)
    data = loaded.spec.model_dump(mode="json", exclude_unset=True)
    data["repo"] = {"path": str(repo), "main_branch": config.project.main_branch}
    data["run"].setdefault("project_id", config.project.id)
    for key, value in (("safety_profile", safety_profile or config.project.safety_profile),
                       ("run_scope", run_scope or config.project.default_run_scope)):
        if value is not None:
            data["run"][key] = value.value
    spec = RunSpec.model_validate(data)
    settings = _run_settings(repo, config)
    ruleset = _project_ruleset(repo, config)
    exclude = exclude_file(repo)
    supervisor = Supervisor(settings)  # writes nothing until started
    try:
        progress = Progress(err)
        engine = Engine(supervisor, config, EngineOptions(
            builder=builder, auditor=auditor, plan_dir=plan.resolve().parent,
            extras=loaded.extras, on_step=progress))
        had_database = not _database_missing(settings)
        if had_database:
            supervisor.start()
            _refuse_existing(supervisor, spec.run.run_id, plan, run_id)
        try:
            engine.check_new_run(spec)
        except InvalidInput as exc:  # named as the plan and autopack.toml name it
            where, message = loaded.place(exc.where), exc.message
            if exc.where.startswith("phase "):
                message = f"{exc.where} {message}"
            if where == "repo.main_branch":
                where = f"{repo / 'autopack.toml'}: $.project.main_branch"
            raise type(exc)(where, message) from None
        keep_out_of_git(repo, exclude, "AUTOPACK_DATABASE_URL" not in os.environ)
        if not had_database:
            supervisor.start()
        parts = split_spec(spec, supervisor.dry_run(spec, ruleset)["split"])
        for part in parts[1:]:
            _refuse_existing(supervisor, part.run.run_id, plan, run_id)
        if len(parts) > 1:
            err.print(f"{len(spec.phases)} phases exceed max_phases: the plan runs as "
                      f"{len(parts)} runs, each starting where the one before ended: "
                      + ", ".join(p.run.run_id for p in parts), markup=False, highlight=False)
        inputs = {"builder": builder, "auditor": auditor,
                  "plan_dir": str(plan.resolve().parent), "extras": loaded.extras}
        with progress:
            chain = drive_parts(supervisor, parts, _announced(supervisor, engine), ruleset,
                                inputs)
        doc = _chain_report(supervisor, chain)
    finally:
        supervisor.close()
    return doc, settings


def _check_repository(repo: Path) -> None:
    if not repo.is_dir():
        raise InvalidInput("--repo", f"{repo} is not a directory")
    if not (repo / ".git").exists():
        bare = (repo / "HEAD").is_file() and (repo / "objects").is_dir()
        raise InvalidInput("--repo", f"{repo} is a bare repository; a run needs a checkout "
                           "(runs keep their files in it)" if bare else
                           f"{repo} is not the root of a git repository")


def _refuse_existing(supervisor: Supervisor, run_id: str, plan: Path,
                     given: str | None) -> None:
    try:
        state = supervisor.get_run(run_id).run.state
    except NotFound:
        return
    raise InvalidInput(
        "--run-id" if given is not None else f"{plan}:1",
        f"run {run_id!r} already exists here ({state}); `autopack resume {run_id}` "
        "continues or reports it, --run-id names a new run")


def _project_ruleset(repo: Path, config: ProjectConfig) -> tuple[Ruleset, str] | None:
    if not config.project.ruleset:
        return None
    path = repo / config.project.ruleset
    return load_ruleset(path), str(path)


def _announced(supervisor: Supervisor, engine: Engine) -> Callable[[str, bool], object]:
    def drive(run_id: str, created: bool) -> object:
        view = supervisor.get_run(run_id)
        if not RunState(view.run.state).is_terminal:
            where = f"{len(view.phases)} phases on autopack/integration/{run_id}"
            err.print(f"run {run_id}: {where}" if created else
                      f"resuming run {run_id} from {view.run.state}: {where}",
                      markup=False, highlight=False)
        return engine.run(run_id)
    return drive


def _chain_report(supervisor: Supervisor, chain: ChainResult) -> dict[str, Any]:
    """The last part's report, with every part's end state (and why later parts did not
    start, if they did not)."""
    doc = run_report(supervisor, chain.last_run_id)
    doc["parts"] = [{"run_id": run_id, "state": state} for run_id, state in chain.parts]
    doc["parts_stopped"] = chain.stopped
    return doc


@app.command()
def demo(
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where to put the example repository (default: a new temp folder).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The whole lifecycle on the bundled example, offline: copy examples/calculator into
    a fresh repository, run its plan (2 tiers, 4 phases) to DONE_SUCCESS, and show where
    to look."""
    source = _examples_dir() / "calculator"
    target = directory or Path(tempfile.mkdtemp(prefix="autopack-demo-")) / "calculator"
    _check_folder("--dir", target)
    if target.exists() and any(target.iterdir()):
        raise InvalidInput("--dir", f"{target} exists and is not empty")
    prepare_demo_repository(source, target, Path(sys.executable).parent)
    doc, settings = _execute_plan(target / "comprehensive_plan.md", target, "auto", None,
                                  None, None, None)
    if as_json:
        _report_run(doc, settings, True)
        return
    _report_run(doc, settings, False, exit_on_failure=False)
    run_id = doc["run_id"]
    out.print(f"""
Look around (the repository is {target}):
  summary     {settings.runs_dir / run_id / 'run_summary.md'}
  issues      {settings.runs_dir / run_id / 'issues' / 'run_issue_index.json'}
  strategy    {settings.runs_dir / run_id}/project_implementation_strategy_v1.json
  branch      git -C {target} log --oneline main..autopack/integration/{run_id}
  tags        git -C {target} tag --list 'autopack/snapshots/{run_id}/*'
  promote     cd {target} && autopack promote {run_id} --dry-run""", highlight=False,
              soft_wrap=True)
    if doc["state"] != "DONE_SUCCESS":
        raise typer.Exit(1)


def _examples_dir() -> Path:
    configured = os.environ.get("AUTOPACK_EXAMPLES_DIR")
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "examples"
    if not (path / "calculator" / "comprehensive_plan.md").exists():
        raise InvalidInput("AUTOPACK_EXAMPLES_DIR", f"no bundled examples at {path}; run the "
                           "demo from a source checkout or point AUTOPACK_EXAMPLES_DIR at "
                           "its examples/ folder")
    return path


@app.command()
def resume(
    run_id: str,
    repo: Annotated[Path, typer.Option(help="The run's repository.")] = Path("."),
    as_json: JsonFlag = False,
) -> None:
    """Continue a run whose process died, from what the database says it finished; a
    finished run is only reported. Exit codes as `autopack run`."""
    repo = repo.resolve()
    if not repo.is_dir():
        raise InvalidInput("--repo", f"{repo} is not a directory")
    config = load_project_config(repo)
    settings = _run_settings(repo, config)
    if _database_missing(settings):  # nothing ran here: write nothing, not even a database
        raise NotFound("run", run_id)
    supervisor = Supervisor(settings)
    supervisor.start()
    try:
        inputs = supervisor.run_inputs(run_id)
        if inputs is None:
            raise InvalidInput(run_id, "was not started by `autopack run`; nothing to resume")
        recorded = supervisor.get_run(run_id).run.repo_path
        if recorded is not None and Path(recorded).resolve() != repo:
            # its autopack.toml (CI commands, isolation) is the one the run must keep
            raise InvalidInput("--repo", f"run {run_id!r} is in {recorded}, not {repo}")
        progress = Progress(err)
        engine = Engine(supervisor, config, EngineOptions(
            builder=inputs["builder"], auditor=inputs["auditor"],
            plan_dir=Path(inputs["plan_dir"]), extras=inputs["extras"], on_step=progress))
        parts = chain_of(inputs)
        with progress:
            if parts is None:
                _announced(supervisor, engine)(run_id, False)
                chain = ChainResult([(run_id, supervisor.get_run(run_id).run.state)], run_id,
                                    None)
            else:
                own = {k: v for k, v in inputs.items() if k not in ("chain", "part")}
                chain = drive_parts(supervisor, parts, _announced(supervisor, engine),
                                    _project_ruleset(repo, config), own)
        doc = _chain_report(supervisor, chain)
    finally:
        supervisor.close()
    _report_run(doc, settings, as_json)


def _report_run(doc: dict[str, Any], settings: Settings, as_json: bool,
                exit_on_failure: bool = True) -> None:
    if as_json:
        print(json.dumps(doc))
    else:
        out.print(f"run {doc['run_id']}: {doc['state']}"
                  + (f" ({doc['failure_reason']})" if doc["failure_reason"] else ""),
                  highlight=False)
        for phase in doc["phases"]:
            out.print(f"  {phase['phase_id']:12s} {phase['state']:10s} attempts "
                      f"{phase['attempts']}  {phase['snapshot_tag'] or ''}", highlight=False)
        out.print(f"files: {settings.runs_dir / doc['run_id']}", highlight=False)
        if len(doc["parts"]) > 1:
            out.print("parts: " + ", ".join(f"{p['run_id']} {p['state'] or 'not started'}"
                                            for p in doc["parts"]), highlight=False)
            if doc["parts_stopped"]:
                out.print(doc["parts_stopped"], highlight=False)
    if exit_on_failure and any(p["state"] != "DONE_SUCCESS" for p in doc["parts"]):
        raise typer.Exit(1)


def _run_settings(repo: Path, config: ProjectConfig) -> Settings:
    """A CLI run keeps its database and artefacts in the repository (both git-excluded,
    see `keep_out_of_git`) unless AUTOPACK_DATABASE_URL / AUTOPACK_RUNS_DIR say otherwise."""
    settings = _settings()
    updates: dict[str, object] = {}
    if "AUTOPACK_DATABASE_URL" not in os.environ:
        folder = _own_folder(repo, ".autopack")
        for name in ("autopack.db", "autopack.db-wal", "autopack.db-shm",
                     "autopack.db-journal", "autopack.db-leases"):
            if (folder / name).is_symlink():  # SQLite would open what it points at
                raise InvalidInput(str(folder / name), "is a link; the run's database "
                                   "stays inside the repository")
        updates["database_url"] = f"sqlite:///{folder / 'autopack.db'}"
    if "AUTOPACK_RUNS_DIR" not in os.environ:
        updates["runs_dir"] = _own_folder(repo, ".autonomous_runs")
    if config.budgets != ProjectConfig().budgets:
        updates["budgets"] = config.budgets
    return settings.model_copy(update=updates)


def _own_folder(repo: Path, name: str) -> Path:
    """`repo/name`, refused when it is a link (a repository can commit one, to have a
    run write its database and files elsewhere) or a file."""
    path = repo / name
    if path.is_symlink() or not_a_folder(path) is not None:
        raise InvalidInput(str(path), "is a link or a file; Autopack keeps its own folder "
                           "here and never writes through a link (remove it, or set "
                           "AUTOPACK_DATABASE_URL / AUTOPACK_RUNS_DIR)")
    return path


@app.command()
def gate(
    profile: Annotated[str, typer.Option(help="The CI profile: normal or strict.")] = "normal",
    repo: Annotated[Path, typer.Option(help="The checkout to check.")] = Path("."),
    log_dir: Annotated[Path | None, typer.Option(
        "--log-dir", help="Where command logs go (default: a new folder under the data "
        "directory).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The preflight gate on a checkout: the profile's commands, retried with backoff, with
    flaky and failing tests reported. Exits 1 when it never goes green."""
    if not repo.is_dir():
        raise InvalidInput("--repo", f"{repo} is not a directory")
    config = load_project_config(repo).ci
    if profile not in config.profiles:
        raise InvalidInput("--profile", f"{profile!r} is not a profile of this project "
                           f"({', '.join(sorted(config.profiles))})")
    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix="gate-", dir=_data_dir()))
    _check_folder("--log-dir", log_dir)
    result = run_preflight(config, profile, repo.resolve(), log_dir)
    doc = {
        "green": result.green, "profile": profile, "attempts": result.attempts,
        "stopped_early": result.stopped_early, "log_dir": str(log_dir),
        "issues": [{"issue_key": i.issue_key, "severity": i.severity, "category": i.category,
                    "description": i.description, "evidence_refs": list(i.evidence_refs)}
                   for i in result.issues],
    }
    if as_json:
        print(json.dumps(doc))
    else:
        state = "green" if result.green else "RED"
        out.print(f"gate {profile}: {state} after {result.attempts} attempt(s); logs in "
                  f"{log_dir}", highlight=False)
        for issue in result.issues:
            out.print(f"  {issue.severity:5s} {issue.issue_key}", highlight=False)
    if not result.green:
        raise typer.Exit(1)


def _data_dir() -> Path:
    path = _settings().data_dir / "gate"
    path.mkdir(parents=True, exist_ok=True)
    return path


INIT_FILES = {
    "autopack.toml": "autopack.toml",
    ".github/workflows/autopack-preflight.yml": "autopack-preflight.yml",
    ".github/workflows/autopack-promotion.yml": "autopack-promotion.yml",
}


@app.command()
def init(
    repo: Annotated[Path, typer.Option(help="The repository to set up.")] = Path("."),
    ci: Annotated[str | None, typer.Option(
        "--ci", help="Also write CI workflows for this provider (github).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a commented autopack.toml (and, with --ci github, the preflight and promotion
    workflows). Existing files are never overwritten without --force."""
    if ci not in (None, "github"):
        raise InvalidInput("--ci", f"{ci!r} is not a supported provider (github)")
    if not repo.is_dir():
        raise InvalidInput("--repo", f"{repo} is not a directory")
    wanted = [k for k in INIT_FILES if ci == "github" or not k.startswith(".github/")]
    for rel in wanted:
        _check_init_target(repo, rel)
    existing = [k for k in wanted if (repo / k).exists()]
    if existing and not force:
        raise InvalidInput(str(repo / existing[0]), "already exists; pass --force to overwrite")
    templates = resources.files("autopack.ci") / "templates"
    for rel in wanted:
        target = repo / rel
        write_text_atomic(target, templates.joinpath(INIT_FILES[rel]).read_text(encoding="utf-8"))
        err.print(f"wrote {target}", markup=False, highlight=False)


def _check_init_target(repo: Path, rel: str) -> None:
    """`repo/rel` is a place for a new file inside the repository: no folder on the way
    is a link (`.github` linked elsewhere had init write there) or a file."""
    path = repo
    for part in Path(rel).parts:
        path = path / part
        if path.is_symlink():
            raise InvalidInput(str(path), "is a link; init writes only inside the repository")
    target = repo / rel
    if target.is_dir():
        raise InvalidInput(str(target), "is a folder; a file goes here")
    _check_folder(str(target), target.parent)


promotion_app = typer.Typer(help="Promotion decisions from a run's artefacts.",
                            no_args_is_help=True)
app.add_typer(promotion_app, name="promotion")


@promotion_app.command("check")
def promotion_check(run_dir: Path, as_json: JsonFlag = False) -> None:
    """Decide from RUN_DIR/run_summary.json alone (no database) whether the run may be
    promoted: exit 0 when eligible, 1 with the reasons when not, 2 when unreadable."""
    summary, reasons = check_run_dir(run_dir)
    if as_json:
        print(json.dumps({"run_id": summary.run_id, "eligible": not reasons,
                          "reasons": reasons}))
    elif reasons:
        err.print(f"promotion blocked for run {summary.run_id}:", markup=False)
        for reason in reasons:
            err.print(f"  - {reason}", markup=False, highlight=False)
    else:
        out.print(f"run {summary.run_id} may be promoted", highlight=False)
    if reasons:
        raise typer.Exit(1)


strategy_app = typer.Typer(help="Compile strategies; print the ruleset schema.",
                           no_args_is_help=True)
app.add_typer(strategy_app, name="strategy")


@strategy_app.command("dry-run")
def strategy_dry_run(
    plan: Annotated[Path | None, typer.Option(
        "--plan", help="comprehensive_plan.md (the default: the one in the current "
        "folder), or a JSON/YAML run spec.")] = None,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="The run id (markdown plans: default from the title).")] = None,
    ruleset: Annotated[Path | None, typer.Option(
        "--ruleset", help="project_ruleset_vN.json (default: AUTOPACK_RULESET, else "
        "the built-in defaults).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compile the strategy a plan would get, without starting anything."""
    if plan is None:
        plan = Path("comprehensive_plan.md")
        if not plan.exists():
            raise InvalidInput("--plan", "there is no comprehensive_plan.md here: name the "
                               "plan file (markdown, JSON or YAML)")
    loaded = load_plan(plan, run_id)
    spec = loaded.spec
    try:  # a plan is for `autopack run`: what git cannot name is refused as it would be
        check_git_ids(spec)
    except InvalidInput as exc:
        raise type(exc)(loaded.place(exc.where), exc.message) from None
    chosen = (load_ruleset(ruleset), str(ruleset)) if ruleset is not None else None
    supervisor = _reader()
    if supervisor is None:  # nothing ran here yet: no backlog, and nothing is created
        document = compile_for(_settings(), spec, chosen)
    else:
        try:
            document = supervisor.dry_run(spec, chosen)
        finally:
            supervisor.close()
    if as_json:
        print(strategy_json(document), end="")
        return
    out.print(f"strategy for run {document['run_id']} ({document['safety_profile']}, "
              f"{document['run_scope']}, adoption stage {document['adoption_stage']}; "
              f"ruleset {document['ruleset']['source']})", highlight=False)
    table = Table("phase", "tier", "category", "complexity", "mode", "CI", "attempts",
                  "tokens", "auditor", "auto-apply")
    for p in document["phases"]:
        table.add_row(p["phase_id"], p["tier_id"], p["task_category"], p["complexity"],
                      p["builder_mode"], p["ci_profile"],
                      f"{p['max_builder_attempts']}/{p['max_auditor_attempts']}",
                      str(p["incident_token_cap"]), p["auditor_profile"] or "-",
                      "yes" if p["auto_apply"] else "no")
    out.print(table)
    if len(document["split"]) > 1:
        out.print("split into runs: " + ", ".join(
            f"{part['run_id']} ({len(part['phase_ids'])} phases)" for part in document["split"]))
    out.print("reasons: autopack strategy dry-run --json", highlight=False)


@strategy_app.command("schema")
def strategy_schema() -> None:
    """Print the JSON Schema of project_ruleset_vN.json."""
    print(json.dumps(ruleset_schema(), indent=2, sort_keys=True))


@app.command()
def promote(
    run_id: str,
    repo: Annotated[Path | None, typer.Option(
        "--repo", help="The repository (default: the one the run was started on).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Promote a run's integration branch to main: the only way main is written.

    Refused, with the reasons, unless the run is DONE_SUCCESS with every tier clean, no
    budget failure and no excess minor-issue debt. Fast-forwards main, or merges when
    main has moved (refused on conflict).
    """
    supervisor = _reader()
    if supervisor is None:
        raise NotFound("run", run_id)
    try:
        result = supervisor.apply.promote(run_id, actor=f"cli:{getpass.getuser()}",
                                          repo=repo, dry_run=dry_run)
    except PromotionRefused as exc:
        if as_json:
            print(json.dumps({"run_id": run_id, "eligible": False, "reasons": exc.reasons}))
        err.print(f"not promoted: run {run_id} is not eligible", markup=False)
        for reason in exc.reasons:
            err.print(f"  - {reason}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    finally:
        supervisor.close()
    plan = result.plan
    doc = {
        "run_id": run_id, "eligible": True, "dry_run": dry_run, "action": plan.action.value,
        "main_branch": plan.main_branch, "main_before": plan.old, "main_after": plan.new,
        "integration_tip": plan.integration_tip,
        "checkouts_updated": [str(p) for p in plan.checkouts],
    }
    if as_json:
        print(json.dumps(doc))
        return
    verb = "would move" if dry_run else "moved"
    if plan.action.value == "up-to-date":
        out.print(f"{plan.main_branch} already contains run {run_id}; nothing to do")
        return
    out.print(f"{plan.main_branch} {verb} {plan.old[:12]} -> {plan.new[:12]} "
              f"({plan.action.value})", highlight=False)
    for path in plan.checkouts:
        out.print(f"checkout {path} {'would follow' if dry_run else 'followed'}",
                  highlight=False)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    """Entry point: run the command; map errors to a message and an exit code. With
    --json a failure is still one JSON document on stdout: a usage error (exit 2) and an
    interrupt (exit 130) too."""
    try:
        try:
            code = app(standalone_mode=False)
        except typer.TyperException as exc:  # a bad option or a missing argument
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one showed the help
                rich_format_error(exc)  # type: ignore[arg-type]
            shown = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            _fail_document(shown, getattr(exc, "exit_code", 2))
        except typer.Abort:  # end of input at a prompt
            _fail_document("aborted", 1)
        except (InvalidInput, NotFound) as exc:
            _fail(exc, 2)
        except AutopackError as exc:
            _fail(exc, 1)
        if code == INTERRUPTED:  # Ctrl-C: the framework's exit code for it
            err.print("interrupted", markup=False, highlight=False)
            _fail_document("interrupted", INTERRUPTED)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): no traceback about it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


INTERRUPTED = 130


def _fail_document(message: str, code: int) -> None:
    if "--json" in sys.argv[1:]:
        print(json.dumps({"error": message, "exit_code": code}))
    sys.exit(code)


def _fail(exc: AutopackError, code: int) -> None:
    """The error on stderr; with --json also as the one JSON document on stdout."""
    err.print(f"error: {exc}", markup=False, highlight=False)
    if "--json" in sys.argv[1:]:
        doc: dict[str, object] = {"error": str(exc), "exit_code": code}
        if isinstance(exc, InvalidInput):
            doc["where"] = exc.where
        print(json.dumps(doc))
    sys.exit(code)
