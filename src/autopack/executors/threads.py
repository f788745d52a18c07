"""The server's executor: runs driven by the engine in a thread pool.

A run submitted here is driven to its terminal state in a worker thread; `wait` lets a
client wait (on the event loop) until then. An engine that dies with an unexpected
error ends its run as DONE_FAILED_ENVIRONMENT. On start, runs the server had been
driving (their inputs say `executor = "server"`) and that are not terminal are picked
up again, so a server restart continues them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from autopack.domain.states import RunState
from autopack.project_config import load_project_config
from autopack.supervisor.engine import Engine, EngineOptions, record_end
from autopack.supervisor.lease import RunBusy
from autopack.supervisor.service import Supervisor

log = logging.getLogger(__name__)


class RunExecutor:
    """Drives runs in a pool of worker threads."""

    def __init__(self, supervisor: Supervisor, workers: int = 4) -> None:
        self.sup = supervisor
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="autopack-run")
        self._done: dict[str, threading.Event] = {}
        self._wakers: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.Lock()

    def submit(self, run_id: str, inputs: dict[str, Any]) -> None:
        """Drive `run_id` in the background with the inputs it was started with."""
        with self._lock:
            if run_id in self._done and not self._done[run_id].is_set():
                return  # already being driven
            self._done[run_id] = threading.Event()
        self._pool.submit(self._drive, run_id, inputs)

    async def wait(self, run_id: str, timeout: float) -> None:
        """Until the run this server drives is terminal, or `timeout` seconds. A waiting
        client holds no thread (forty blocked ones once stalled every other request)."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not woken.done():
                woken.set_result(None)

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle)

        with self._lock:
            done = self._done.get(run_id)
            if done is None or done.is_set():
                return
            self._wakers.setdefault(run_id, []).append(wake)
        try:
            await asyncio.wait_for(woken, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                waiting = self._wakers.get(run_id, [])
                if wake in waiting:
                    waiting.remove(wake)

    def resume_unfinished(self) -> list[str]:
        """Submit every non-terminal run this server was driving; their ids."""
        picked = []
        for row in self.sup.list_runs(limit=10_000):
            if RunState(row.state).is_terminal:
                continue
            inputs = self.sup.run_inputs(row.run_id)
            if inputs is not None and inputs.get("executor") == "server":
                self.submit(row.run_id, inputs)
                picked.append(row.run_id)
        return picked

    def shutdown(self) -> None:
        """Stop taking runs; runs in flight are resumed by the next start."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _drive(self, run_id: str, inputs: dict[str, Any]) -> None:
        try:
            repo = Path(self.sup.get_run(run_id).run.repo_path or ".")
            engine = Engine(self.sup, load_project_config(repo), EngineOptions(
                builder=inputs["builder"], auditor=inputs.get("auditor"),
                plan_dir=Path(inputs["plan_dir"]), extras=inputs["extras"]))
            engine.run(run_id)
        except RunBusy as exc:  # driven elsewhere (e.g. `autopack resume`): not ours to end
            log.warning("%s", exc)
        except Exception as exc:  # the run must still end; the reason goes with it
            log.exception("run %s: the engine failed", run_id)
            if not RunState(self.sup.get_run(run_id).run.state).is_terminal:
                self.sup.fail_run(run_id, "ENVIRONMENT", f"the engine failed: {exc}", "server")
                record_end(self.sup, run_id)
        finally:
            with self._lock:
                self._done[run_id].set()
                waiting = self._wakers.pop(run_id, [])
            for wake in waiting:
                wake()
