"""Execute one notebook with papermill into `outputs/runs/<notebook>/<name>/`, atomically.

The run is built in a hidden temporary folder beside its final place and renamed when
it has ended, finished or failed: Ctrl-C or SIGTERM leaves no half-written run behind.
From its first moment the temporary folder's `status.json` says who builds it (host,
pid, SLURM job), so a run killed outright (SIGKILL, out of memory) is recognised as
dead later (`storylab.runner.in_progress`).

Everything that can be checked without data is checked before the folder exists: the
notebook, the parameters' names and types (`params`), the notebook's own value checks
(`notebook_checks`) and the run name.

A kernel that fails to start (two kernels racing for a port, a start-up deadline missed on
a loaded machine) is started again, up to KERNEL_START_ATTEMPTS times, for every caller
(`storylab run`, pipelines, both sweep backends); a kernel that dies once cells have run
(out of memory) is not: that run failed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from storylab.cache import spec_hash, write_json_atomic, write_text_atomic
from storylab.paths import launch_dir, runs_dir
from storylab.progress import HEADLESS_ENV
from storylab.readers import first_line, iso_now
from storylab.runner.in_progress import check_runs_in_progress, replace_folder
from storylab.runner.names import check_run_name
from storylab.runner.notebook_checks import effective_parameters
from storylab.runner.params import ParameterError, notebook_parameters, resolve_notebook
from storylab.runner.process import this_process
from storylab.runner.report import write_report
from storylab.runs import read_run

KERNEL_NAME = "python3"
KERNEL_LOG = "kernel.log"  # what the kernel process itself wrote to stderr (kept only when not empty)


class _KnownParameters(logging.Filter):
    """papermill cannot read annotated parameters (`x: int | None = 1`) and warns they are unknown;
    ours were already checked against the cell, so that warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


logging.getLogger("papermill").addFilter(_KnownParameters())


@dataclass
class RunResult:
    folder: Path
    status: str  # "finished" | "failed" | "reused"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("finished", "reused")


def default_run_name(params: dict[str, Any]) -> str:
    """The name of a run that was given none: a hash of its effective parameters."""
    return spec_hash(params, 10)


def run_notebook(notebook: str | Path, overrides: dict[str, Any] | None = None, name: str | None = None,
                 force: bool = False, progress: bool = False) -> RunResult:
    """Check parameters, execute, write report/params/status; the folder appears when the run ends.

    An identical finished run is reused unless `force`; a finished run of the same name with
    other parameters is never replaced silently (ParameterError unless `force`).
    """
    path = resolve_notebook(notebook)
    overrides = dict(overrides or {})
    params = effective_parameters(path, overrides)  # raises ParameterError before anything is made
    name = check_run_name(name) if name is not None else default_run_name(params)
    final = runs_dir() / path.stem / name
    if check_run_target(path.stem, name, params, force):
        return RunResult(final, "reused")
    # The kernel is given the checked values (user paths absolute), not the raw overrides.
    defaults = {key: p.default for key, p in notebook_parameters(path).items()}
    injected = {k: v for k, v in params.items() if k in overrides or v != defaults[k]}

    tmp = final.parent / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        write_text_atomic(tmp / "params.yaml", yaml.safe_dump(params, sort_keys=False))
        status = _execute_until_the_kernel_starts(path, tmp, injected, _begin_status(path, name, overrides), progress)
        replace_folder(tmp, final)
    except BaseException:  # Ctrl-C, SIGTERM or an internal error: leave nothing half-written
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunResult(final, status["status"], (status.get("error") or {}).get("message"))


def check_run_target(notebook: str, name: str, params: dict[str, Any], force: bool = False,
                     where: str | None = None) -> bool:
    """The pre-check of a run to be made in `outputs/runs/<notebook>/<name>/` with `params` (every
    parameter, checked): True when an identical finished run is there to be reused.

    A one-line ParameterError (prefixed `where`, default `--name <name>`) when a live run of that
    name is in progress, or the folder there cannot be read, or finished with other parameters.
    `force` skips all of it. `run_notebook` calls it, and a pipeline for every step before the first."""
    if force:
        return False
    where = where or f"--name {name}"
    running, _ = check_runs_in_progress(notebook, name)
    if running:  # two runs of one name at once would each replace the other's folder when they end
        raise ParameterError(f"{where}: a run of {notebook} named {name!r} is in progress ({running[0].why}); "
                             "wait for it, or use --force to run another attempt beside it")
    existing = read_run(runs_dir() / notebook / name)
    if not existing.folder.exists():
        return False
    if existing.finished and existing.params == params:
        return True
    if existing.problem:
        raise ParameterError(f"{where}: {existing.folder} exists but cannot be read ({existing.problem}); "
                             "use --force to replace it, or another name")
    if existing.finished:
        changed = [f"{k}: {existing.params.get(k)!r} -> {params.get(k)!r}"
                   for k in dict.fromkeys([*existing.params, *params]) if existing.params.get(k) != params.get(k)]
        shown = "; ".join(changed[:3]) + (f"; +{len(changed) - 3} more" if len(changed) > 3 else "")
        raise ParameterError(f"{where}: the finished run {existing.folder} has other parameters ({shown}); "
                             "use --force to replace it, or another name")
    return False


# Kernels started at the same moment can race for the same ports, or miss the start-up deadline on a
# loaded machine. Such a run never reached the notebook's code and is safe to start again.
KERNEL_START_ATTEMPTS = 3
KERNEL_RESTART_DELAY_S = (1.0, 4.0)  # a random wait in this range: two runs that raced start apart
# Messages only a kernel that never started gives, and those of a kernel that died: the latter count
# only when the executed notebook shows that no cell started (else it died mid-run, e.g. out of memory).
KERNEL_START_ONLY = r"Kernel died before replying|kernel_info|Kernel didn't respond|Address already in use|ZMQError"
KERNEL_START_FAILURE = re.compile(KERNEL_START_ONLY, re.IGNORECASE)
KERNEL_FAILURE = re.compile(KERNEL_START_ONLY + r"|DeadKernelError|Kernel died|Timeout waiting for", re.IGNORECASE)


def is_kernel_start_failure(status: dict[str, Any]) -> bool:
    """Did this run fail because its kernel never started (no cell of the notebook ran)?"""
    error = status.get("error") or {}
    if status.get("status") != "failed" or error.get("cell") is not None:
        return False
    text = f"{error.get('ename', '')}: {error.get('message', '')}"
    if error.get("cells_started") == 0:
        return bool(KERNEL_FAILURE.search(text))
    if error.get("cells_started") is None:  # not recorded, or the notebook unreadable: only start-up messages
        return bool(KERNEL_START_FAILURE.search(text))
    return False


def _execute_until_the_kernel_starts(notebook: Path, folder: Path, injected: dict, begun: dict[str, Any],
                                     progress: bool) -> dict[str, Any]:
    """`_execute`, again (up to KERNEL_START_ATTEMPTS times) while the kernel fails to start; the last status."""
    status, attempt = dict(begun), 1
    while True:
        write_json_atomic(folder / "status.json", status)
        _execute(notebook, folder, injected, status, progress)
        if attempt == KERNEL_START_ATTEMPTS or not is_kernel_start_failure(status):
            return status
        for leftover in ("notebook.ipynb", "report.html", KERNEL_LOG):  # the next attempt starts clean
            (folder / leftover).unlink(missing_ok=True)
        time.sleep(random.uniform(*KERNEL_RESTART_DELAY_S))
        attempt += 1
        status = {**begun, "started": iso_now(), "attempt": attempt}


def _cells_started(executed: Path) -> int | None:
    """How many cells papermill started (its per-cell `start_time`); 0 when it saved no notebook, None if unreadable."""
    if not executed.exists():
        return 0
    try:
        cells = json.loads(executed.read_bytes())["cells"]
        return sum(1 for cell in cells if ((cell.get("metadata") or {}).get("papermill") or {}).get("start_time"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _begin_status(notebook: Path, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    return {"status": "running", "notebook": notebook.stem, "name": name, "overrides": overrides,
            **this_process(), "started": iso_now()}


def _kernel_manager_class(stderr, env: dict[str, str]):
    """A kernel manager whose kernel gets `env` on top of this process's environment and writes its
    own stderr to `stderr` (the run's kernel.log).

    The environment goes to the kernel alone: this process's `os.environ` is left as it was (a
    script or notebook may call `run_notebook` in-process). The runner's stderr is for one-line
    messages: a kernel stopped by Ctrl-C or SIGTERM, or outliving its removed folder by a moment,
    must not print tracebacks there."""
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw.setdefault("stderr", stderr)
            kw["env"] = {**kw.get("env", os.environ), **env}
            return await super().start_kernel(**kw)

    return RunKernelManager


def _execute(notebook: Path, folder: Path, injected: dict, status: dict, progress: bool) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = time.time()
    # Through its environment the kernel's notebook finds its run folder, its own file and
    # the directory user paths resolve against; progress bars print one final line per loop
    # instead of filling the report (storylab.progress).
    kernel_env = {"STORYLAB_RUN_DIR": str(folder), "STORYLAB_NOTEBOOK": str(notebook),
                  "STORYLAB_LAUNCH_DIR": str(launch_dir()), HEADLESS_ENV: "1"}
    kernel_log = open(folder / KERNEL_LOG, "wb")
    try:
        papermill.execute_notebook(
            str(notebook), str(folder / "notebook.ipynb"), parameters=injected, kernel_name=KERNEL_NAME,
            cwd=str(folder), progress_bar=progress, log_output=False, report_mode=False,
            kernel_manager_class=_kernel_manager_class(kernel_log, kernel_env),
            # the kernel's start-up warnings (e.g. "running over TCP without encryption") are noise
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
        status["status"] = "finished"
    except PapermillExecutionError as error:
        status["status"] = "failed"
        status["error"] = {"cell": error.exec_count, "ename": error.ename, "evalue": error.evalue,
                           "message": f"cell [{error.exec_count}] {error.ename}: {first_line(error.evalue)}"}
    except Exception as error:  # kernel died, notebook unreadable, ...
        status["status"] = "failed"
        status["error"] = {"cell": None, "ename": type(error).__name__, "evalue": str(error),
                           "message": f"{type(error).__name__}: {first_line(error)}", "traceback": traceback.format_exc(),
                           "cells_started": _cells_started(folder / "notebook.ipynb")}
    finally:
        kernel_log.close()
    if (folder / KERNEL_LOG).stat().st_size == 0:
        (folder / KERNEL_LOG).unlink()
    status["ended"] = iso_now()
    status["elapsed_s"] = round(time.time() - started, 2)
    if (folder / "notebook.ipynb").exists():
        try:
            write_report(folder)
        except Exception as error:  # a report problem must not hide the run's own result
            status["report_error"] = f"{type(error).__name__}: {error}"
    write_json_atomic(folder / "status.json", status)
