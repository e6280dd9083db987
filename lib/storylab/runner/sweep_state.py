"""Where each run of a sweep stands: the state file `outputs/sweeps/<sweep>/jobs.json`.

The run folders are the truth for runs that ended (their `status.json`); the state file
adds what folders cannot say: which runs belong to the sweep, when each was submitted,
and the process or SLURM job running it, so `storylab status` can tell a pending run
from a running one and notice a job that died without writing its run.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from storylab.cache import write_json_atomic
from storylab.paths import outputs_dir, runs_dir

TMP_RUN = re.compile(r"^\.tmp-(?P<name>.*)-[0-9a-f]{8}$")
SLURM_ALIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED", "UNKNOWN"}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sweeps_dir() -> Path:
    return outputs_dir() / "sweeps"


def read_state(sweep_folder: Path) -> dict[str, Any]:
    try:
        return json.loads((sweep_folder / "jobs.json").read_text())
    except (OSError, ValueError):
        return {}


def write_state(sweep_folder: Path, state: dict[str, Any]) -> None:
    state["updated"] = now_iso()
    write_json_atomic(sweep_folder / "jobs.json", state)


def read_run_status(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def finished_params(folder: Path) -> dict[str, Any] | None:
    try:
        return yaml.safe_load((folder / "params.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None


def run_in_progress(folder: Path) -> bool:
    """A hidden `.tmp-<name>-<hex>` beside the run folder: the runner is building it now."""
    if not folder.parent.exists():
        return False
    return any((m := TMP_RUN.match(p.name)) and m["name"] == folder.name for p in folder.parent.iterdir())


def pid_alive(pid: int | None) -> bool:
    import psutil

    if not pid:
        return False
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError):
        return False


def job_alive(state: dict[str, Any], entry: dict[str, Any]) -> bool | None:
    """Is the process / job of this run still alive? None when the state file cannot say."""
    if state.get("backend") == "local":
        return pid_alive(entry.get("pid")) if entry.get("pid") else None
    job_id = entry.get("job_id")
    if not job_id:
        return None
    if state.get("cluster") == "local":  # submitit's local executor: the job id is the controller's pid
        return pid_alive(int(str(job_id).split("_")[0]))
    import submitit

    job = submitit.SlurmJob(folder=state["submitit_folder"], job_id=str(job_id))
    return job.state.split()[0] in SLURM_ALIVE


def run_standing(state: dict[str, Any], name: str) -> tuple[str, str | None]:
    """(pending | running | finished | failed, error message or None) of one run of a sweep."""
    entry = state["runs"][name]
    folder = runs_dir() / state["notebook"] / name
    if run_in_progress(folder):
        return "running", None
    status = read_run_status(folder)
    submitted = entry.get("submitted")
    if status and (submitted is None or status.get("ended", "") >= submitted):
        return status.get("status", "failed"), (status.get("error") or {}).get("message")
    alive = job_alive(state, entry) if submitted else None
    if alive:
        return "pending", None
    if alive is False and entry.get("state") in ("pending", "running"):
        return "failed", entry.get("error") or "its job ended without writing the run (see the job's log)"
    return entry.get("state", "pending"), entry.get("error")


def standings(state: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {name: run_standing(state, name) for name in state.get("runs", {})}


def sweep_membership() -> dict[tuple[str, str], list[str]]:
    """(notebook, run name) → the sweeps that list it: the index's sweep column."""
    members: dict[tuple[str, str], list[str]] = {}
    if not sweeps_dir().exists():
        return members
    for folder in sorted(sweeps_dir().iterdir()):
        state = read_state(folder)
        for name in state.get("runs", {}):
            members.setdefault((state.get("notebook", ""), name), []).append(folder.name)
    return members


def select_runs(sweep, retry_failed: bool = False) -> tuple[list, dict[str, str]]:
    """(runs to launch, {name: 'finished' | 'failed'} of runs to leave alone).

    A run whose folder ended with the same parameters is skipped: finished ones always,
    failed ones unless `retry_failed`. Runs never made, or made with other parameters
    (the sweep file changed), are launched; but a run folder of another sweep is never
    replaced: that is a name clash, reported before anything starts.
    """
    from storylab.runner.execute import effective_parameters
    from storylab.runner.params import ParameterError

    members = sweep_membership()
    todo, skipped = [], {}
    for run in sweep.runs:
        folder = sweep.run_folder(run)
        status = read_run_status(folder).get("status")
        same = status is not None and finished_params(folder) == effective_parameters(sweep.notebook, run.overrides)
        others = [s for s in members.get((sweep.notebook.stem, run.name), []) if s != sweep.name]
        if status is not None and not same and others:
            raise ParameterError(f"sweep {sweep.name}: run {run.name!r} would replace the run of sweep {others[0]!r}, "
                                 f"which has other parameters; give one of them a `prefix:` (e.g. prefix: {sweep.name}-)")
        if same and (status == "finished" or (status == "failed" and not retry_failed)):
            skipped[run.name] = status
        else:
            todo.append(run)
    return todo, skipped


def begin_state(sweep, backend: str, todo: list, skipped: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A fresh jobs.json for this launch: every run of the sweep, the ones launched now pending."""
    launched = now_iso()
    runs = {}
    for run in sweep.runs:
        entry: dict[str, Any] = {"overrides": run.overrides, "swept": run.swept}
        if run.name in skipped:
            error = (read_run_status(sweep.run_folder(run)).get("error") or {}).get("message")
            entry.update(state=skipped[run.name], submitted=None, error=error, skipped=True)
        else:
            entry.update(state="pending", submitted=launched, attempts=0, error=None)
        runs[run.name] = entry
    state = {"sweep": sweep.name, "file": str(sweep.file), "notebook": sweep.notebook.stem, "backend": backend,
             "swept": sweep.swept_names, "launched": launched, **extra, "runs": runs}
    write_state(sweep.folder, state)
    return state


# Kernels started at the same moment can race for the same ports, or miss the start-up
# deadline on a loaded machine: such a run never reached the notebook's code and is safe
# to start again.
KERNEL_START_FAILURE = re.compile(
    r"Kernel died before replying|kernel_info|Kernel didn't respond|Address already in use|ZMQError"
    r"|DeadKernelError|Timeout waiting for|Kernel died", re.IGNORECASE)


def is_kernel_start_failure(status: dict[str, Any]) -> bool:
    error = status.get("error") or {}
    if status.get("status") != "failed" or error.get("cell") is not None:
        return False
    return bool(KERNEL_START_FAILURE.search(f"{error.get('ename', '')}: {error.get('message', '')}"))
