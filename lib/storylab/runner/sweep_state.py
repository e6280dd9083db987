"""Where each run of a sweep stands: the typed state file `outputs/sweeps/<sweep>/jobs.json`.

The run folders are the truth for runs that ended (their `status.json`); the state file
adds what folders cannot say: which runs belong to the sweep, when each was submitted,
and the process or SLURM job running it, so `storylab status` can tell a pending run
from a running one and notice a job that died without writing its run.

`SweepState` and `RunEntry` are the file's only readers and writers (`to_json` /
`from_json`); a malformed file (not JSON, a required key missing, a value of the wrong
type) is a one-line ParameterError naming it and the field.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from storylab.cache import write_json_atomic
from storylab.paths import outputs_dir, runs_dir
from storylab.readers import iso_now, read_json
from storylab.runner.in_progress import check_runs_in_progress
from storylab.runner.params import ParameterError
from storylab.runner.process import SLURM_ALIVE, owner_state, pid_alive, slurm_job_state
from storylab.runs import read_run

STATES = ("finished", "failed", "running", "pending", "interrupted")


def sweeps_dir() -> Path:
    return outputs_dir() / "sweeps"


@dataclass
class RunEntry:
    """One run of a sweep as the sweep launched it."""
    overrides: dict[str, Any] = field(default_factory=dict)  # the parameters the run is given
    swept: dict[str, Any] = field(default_factory=dict)      # only the values the sweep varies
    state: str = "pending"             # pending | running | finished | failed | interrupted
    submitted: str | None = None       # when this launch submitted it (None: skipped, done before)
    attempts: int = 0
    error: str | None = None
    pid: int | None = None             # local backend: the child process
    job_id: str | None = None          # slurm backend: the submitit / SLURM job
    log: str | None = None
    started_at: float | None = None    # the start time (epoch s) of the process `pid` / the local job's
                                       # controller: a later process given the same pid is not the run's


@dataclass
class SweepState:
    sweep: str
    notebook: str
    file: str = ""
    backend: str = "local"             # local | slurm
    swept: list[str] = field(default_factory=list)
    launched: str = ""
    runs: dict[str, RunEntry] = field(default_factory=dict)
    cluster: str | None = None         # slurm backend: slurm | local (submitit's local executor)
    submitit_folder: str | None = None
    updated: str = ""
    launcher: dict[str, Any] = field(default_factory=dict)  # the process that launched it (host, pid, pid_started)

    @property
    def folder(self) -> Path:
        return sweeps_dir() / self.sweep

    def count(self, state: str) -> int:
        return sum(1 for e in self.runs.values() if e.state == state)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "jobs.json") -> "SweepState":
        if not isinstance(data, dict):
            raise ParameterError(f"{where}: expected a JSON object, got {type(data).__name__}")
        runs = data.get("runs", {})
        if not isinstance(runs, dict):
            raise ParameterError(f"{where}: 'runs' must be an object of run names")
        top = _known(cls, {k: v for k, v in data.items() if k != "runs"}, where)
        entries = {name: RunEntry(**_known(RunEntry, entry, f"{where}: run {name!r}")) for name, entry in runs.items()}
        return cls(**top, runs=entries)


def _known(cls, data: Any, where: str) -> dict[str, Any]:
    """`data` restricted to the dataclass's fields (keys of other versions dropped), with the required
    ones present and each value of its field's type; else a one-line ParameterError naming the field."""
    if not isinstance(data, dict):
        raise ParameterError(f"{where}: expected a JSON object, got {json.dumps(data)[:40]}")
    expected = {name: _plain_types(hint) for name, hint in typing.get_type_hints(cls).items() if name != "runs"}
    required = [f.name for f in fields(cls) if f.name != "runs" and f.default is MISSING and f.default_factory is MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise ParameterError(f"{where}: missing {missing[0]!r}")
    known = {k: v for k, v in data.items() if k in expected}
    for name, value in known.items():
        if not _fits(value, expected[name]):
            label = " | ".join("None" if t is type(None) else t.__name__ for t in expected[name])
            raise ParameterError(f"{where}: {name!r} must be {label}, got {json.dumps(value, default=str)[:40]}")
    return known


def _plain_types(hint: Any) -> tuple[type, ...] | None:
    """`str | None` → (str, NoneType), `dict[str, Any]` → (dict,), `Any` → None (anything)."""
    if hint is Any:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        parts = [_plain_types(arg) for arg in typing.get_args(hint)]
        return None if None in parts else tuple(t for part in parts for t in part)
    return (typing.get_origin(hint) or hint,)


def _fits(value: Any, allowed: tuple[type, ...] | None) -> bool:
    if allowed is None:
        return True
    if isinstance(value, bool):  # an int subclass, but `attempts: true` is a broken file
        return bool in allowed
    return isinstance(value, allowed) or (float in allowed and isinstance(value, int))


def read_state(sweep_folder: Path) -> SweepState | None:
    """The sweep's state, None when it has none; a malformed file is a one-line ParameterError."""
    path = sweep_folder / "jobs.json"
    data = read_json(path, str(path), "a sweep's JSON state file", ParameterError, missing=None)
    if data is None:
        return None
    if isinstance(data, dict):
        data.setdefault("sweep", sweep_folder.name)
    return SweepState.from_json(data, str(path))


def write_state(state: SweepState) -> None:
    state.updated = iso_now()
    write_json_atomic(state.folder / "jobs.json", state.to_json())


def all_states() -> dict[str, SweepState | str]:
    """Every sweep folder → its state, or why it cannot be read."""
    found: dict[str, SweepState | str] = {}
    if not sweeps_dir().is_dir():
        return found
    for folder in sorted(p for p in sweeps_dir().iterdir() if (p / "jobs.json").exists()):
        try:
            found[folder.name] = read_state(folder)
        except ParameterError as error:
            found[folder.name] = str(error)
    return found


def job_alive(state: SweepState, entry: RunEntry) -> bool | None:
    """Is the process / job of this run alive? None when that cannot be known here (SLURM without sacct).

    A run the launch has not yet given a process or job (more runs than --jobs, or a
    submission that failed) can only be started by its launcher: it is alive while that is."""
    if state.backend == "local" and entry.pid:
        return pid_alive(entry.pid, entry.started_at)
    if state.backend == "slurm" and entry.job_id:
        if state.cluster == "local":  # submitit's local executor: the job id is the controller's pid
            return pid_alive(int(str(entry.job_id).split("_")[0]), entry.started_at)
        job_state = slurm_job_state(entry.job_id, state.submitit_folder or "")
        return None if job_state is None else job_state in SLURM_ALIVE
    return launcher_alive(state)


def launcher_alive(state: SweepState) -> bool | None:
    """Is the process that launched the sweep alive? None on another host it cannot check."""
    if not state.launcher.get("host"):
        return False  # a state file from before launchers were recorded: that launch ended long ago
    return {"alive": True, "dead": False}.get(owner_state(state.launcher)[0])


def run_standing(state: SweepState, name: str) -> tuple[str, str | None]:
    """(pending | running | finished | failed | interrupted, error or None) of one run of a sweep.

    A dead attempt left in progress (killed outright) is turned into a failed run first."""
    entry = state.runs[name]
    running, _ = check_runs_in_progress(state.notebook, name)
    if running:
        return "running", None
    run = read_run(runs_dir() / state.notebook / name)
    ended = run.status.get("ended", "") if not run.problem else ""
    if (run.finished or run.state == "failed") and (entry.submitted is None or ended >= entry.submitted):
        return run.state, run.error
    if entry.submitted is None or entry.state not in ("pending", "running"):
        return entry.state, entry.error
    alive = job_alive(state, entry)
    if alive is None:
        return entry.state, entry.error
    if alive:
        return "pending", None
    if entry.pid or entry.job_id:
        return "failed", entry.error or "its job ended without writing the run (see the job's log)"
    return "interrupted", "not started: the sweep that launched it ended first (killed?); launch the sweep again"


def standings(state: SweepState) -> dict[str, tuple[str, str | None]]:
    return {name: run_standing(state, name) for name in state.runs}


def standing_counts(stand: dict[str, tuple[str, str | None]]) -> dict[str, int]:
    """{state: number of runs}, in the order of STATES."""
    counts = {s: sum(1 for standing, _ in stand.values() if standing == s) for s in STATES}
    return {s: n for s, n in counts.items() if n}


def sweep_membership(states: dict[str, SweepState | str] | None = None) -> dict[tuple[str, str], list[str]]:
    """(notebook, run name) → the sweeps that list it: the dashboard's sweep column (`states`: all_states())."""
    members: dict[tuple[str, str], list[str]] = {}
    for sweep_name, state in (all_states() if states is None else states).items():
        if isinstance(state, SweepState):
            for name in state.runs:
                members.setdefault((state.notebook, name), []).append(sweep_name)
    return members
