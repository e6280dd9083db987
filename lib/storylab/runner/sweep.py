"""Sweep files: a notebook, base parameters and a grid and/or zip of values → a list of runs.

    # params/sweeps/hmm_states.yaml
    notebook: 02_hmm
    params: {max_len: 500}                  # base parameters shared by every run
    grid:                                   # cartesian product
      n_states: [50, 100, 250]
      rows: [1000, 5000]
    zip:                                    # parallel lists: the i-th values go together
      tokenizer: ["bpe:500", "bpe:1000"]
    slurm: {partition: gpu, time_min: 120, mem_gb: 16, cpus_per_task: 4, gpus_per_node: 1}
    smoke:                                  # `--smoke`: a tiny variant for tests
      params: {rows: 50}                    # updates params
      grid: {n_states: [4]}                 # replaces grid (and `zip:` replaces zip)

Every run is named after the values that vary (`n_states=100,rows=1000,tokenizer=bpe-500`)
and lands in `outputs/runs/<notebook>/<name>/`; `prefix:` keeps two sweeps of one notebook
apart (a run of another sweep is never replaced), and smoke runs are prefixed `smoke-`.
Every combination is checked against the notebook's parameters cell before any run starts.
This module only plans a sweep; `sweep_local`, `sweep_slurm` run it.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storylab.cache import spec_hash
from storylab.paths import outputs_dir, runs_dir
from storylab.runner.execute import effective_parameters, resolve_notebook
from storylab.runner.params import ParameterError, read_yaml_mapping

SWEEP_KEYS = {"notebook", "description", "params", "grid", "zip", "slurm", "smoke", "prefix"}
SMOKE_KEYS = {"params", "grid", "zip", "prefix"}
MAX_NAME_CHARS = 120
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._=,+-]+")


@dataclass(frozen=True)
class PlannedRun:
    name: str
    overrides: dict[str, Any]  # base params + this combination: what the run is given
    swept: dict[str, Any]      # only the values this sweep varies (for names, tables, plots)


@dataclass
class Sweep:
    name: str                  # `hmm_states`, or `hmm_states-smoke`
    file: Path
    notebook: Path
    runs: list[PlannedRun]
    swept_names: list[str]
    slurm: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def folder(self) -> Path:
        """`outputs/sweeps/<name>/`: jobs.json, per-run parameter files and logs, summary."""
        return outputs_dir() / "sweeps" / self.name

    def run_folder(self, run: PlannedRun) -> Path:
        return runs_dir() / self.notebook.stem / run.name


def load_sweep(path: str | Path, smoke: bool = False) -> Sweep:
    """Read a sweep file, expand it and check every run's parameters; raises ParameterError."""
    path = Path(path)
    where = f"sweep {str(path)!r}"
    data = read_yaml_mapping(path, where, "a mapping with notebook, params, grid and/or zip")
    _check_keys(data, SWEEP_KEYS, where)
    if "notebook" not in data:
        raise ParameterError(f"{where}: missing 'notebook' (e.g. notebook: 02_hmm)")
    params, grid, zipped = (_mapping(data, k, where) for k in ("params", "grid", "zip"))
    prefix = str(data.get("prefix", ""))
    if smoke:
        if not isinstance(data.get("smoke"), dict):
            raise ParameterError(f"{where}: --smoke needs a 'smoke:' block (params / grid / zip)")
        block = data["smoke"]
        _check_keys(block, SMOKE_KEYS, f"{where} smoke")
        params = {**params, **_mapping(block, "params", f"{where} smoke")}
        grid = _mapping(block, "grid", f"{where} smoke") if "grid" in block else grid
        zipped = _mapping(block, "zip", f"{where} smoke") if "zip" in block else zipped
        prefix = str(block.get("prefix", "smoke-" + prefix))
    notebook = resolve_notebook(data["notebook"])
    combinations = expand(grid, zipped, where)
    runs = [PlannedRun(name, {**params, **combo}, combo)
            for name, combo in zip(run_names(combinations, prefix), combinations)]
    for run in runs:
        try:
            effective_parameters(notebook, run.overrides)
        except ParameterError as error:
            raise ParameterError(f"{where}: run {run.name!r}: {error}") from None
    slurm = data.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise ParameterError(f"{where}: 'slurm' must be a mapping (partition, time_min, mem_gb, ...)")
    return Sweep(path.stem + ("-smoke" if smoke else ""), path.resolve(), notebook, runs,
                 [*grid, *zipped], slurm, str(data.get("description", "")))


def expand(grid: dict[str, list], zipped: dict[str, list], where: str = "sweep") -> list[dict[str, Any]]:
    """Grid (cartesian product) × zip (parallel lists) → one dict of values per run."""
    for kind, block in (("grid", grid), ("zip", zipped)):
        for name, values in block.items():
            if not isinstance(values, list) or not values:
                raise ParameterError(f"{where}: {kind}.{name} must be a non-empty list of values, got {values!r}")
    both = set(grid) & set(zipped)
    if both:
        raise ParameterError(f"{where}: {sorted(both)[0]!r} is in both grid and zip; put it in one")
    lengths = {name: len(values) for name, values in zipped.items()}
    if len(set(lengths.values())) > 1:
        raise ParameterError(f"{where}: zip lists must have equal lengths, got {lengths}")
    grid_combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    zip_rows = [dict(zip(zipped, values)) for values in zip(*zipped.values())] if zipped else [{}]
    return [{**g, **z} for g in grid_combos for z in zip_rows]


def render_value(value: Any) -> str:
    """A compact, filesystem-safe rendering: [32, 64] → 32-64, {kind: bpe, vocab_size: 500} → bpe-500."""
    if isinstance(value, dict):
        text = "-".join(render_value(v) for v in value.values())
    elif isinstance(value, (list, tuple)):
        text = "-".join(render_value(v) for v in value)
    elif value is None:
        text = "none"
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    return UNSAFE_NAME_CHARS.sub("-", text).strip("-") or "empty"


def run_name(values: dict[str, Any], prefix: str = "") -> str:
    name = prefix + ",".join(f"{k}={render_value(v)}" for k, v in values.items())
    name = name or "default"
    if len(name) > MAX_NAME_CHARS:  # keep it readable, and unique through the hash
        name = name[:MAX_NAME_CHARS - 11] + "-" + spec_hash(values, 10)
    return name.lstrip(".")


def run_names(combinations: list[dict[str, Any]], prefix: str = "") -> list[str]:
    """One name per combination; two values that render alike get a hash suffix to stay apart."""
    names = [run_name(c, prefix) for c in combinations]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return [f"{n}-{spec_hash(c, 8)}" if counts[n] > 1 else n for n, c in zip(names, combinations)]


def _mapping(data: dict, key: str, where: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ParameterError(f"{where}: {key!r} must be a mapping of parameter names, got {json.dumps(value)}")
    return dict(value)


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ParameterError(f"{where}: unknown key {unknown[0]!r}; expected some of: {', '.join(sorted(allowed))}")


@dataclass
class SweepOutcome:
    sweep: Sweep
    state: dict[str, Any]       # jobs.json
    launched: list[str]         # run names started by this call
    skipped: dict[str, str]     # run name → finished | failed (left alone)
    waited: bool = True

    def count(self, status: str) -> int:
        return sum(1 for e in self.state["runs"].values() if e.get("state") == status)


def run_sweep(path: str | Path, jobs: int = 1, backend: str = "local", retry_failed: bool = False,
              smoke: bool = False, wait: bool = True, cluster: str = "slurm", progress: bool = True) -> SweepOutcome:
    """Check every run, launch the ones not yet done, (wait,) then write the summary and index."""
    from storylab.runner.report import write_index
    from storylab.runner.sweep_state import begin_state, select_runs
    from storylab.runner.sweep_summary import write_summary

    if backend not in ("local", "slurm"):
        raise ParameterError(f"--backend: expected local or slurm, got {backend!r}")
    if jobs < 1:
        raise ParameterError(f"--jobs: expected a positive number of parallel runs, got {jobs}")
    if not wait and backend == "local":
        raise ParameterError("--no-wait works with --backend slurm only (local runs are children of the sweep)")
    sweep = load_sweep(path, smoke)  # every run's parameters are checked before anything starts
    cluster = sweep.slurm.get("cluster", cluster) if cluster == "slurm" else cluster
    if backend == "slurm":
        from storylab.runner.sweep_slurm import check_cluster, executor_parameters

        check_cluster(cluster)  # no SLURM here, or a bad slurm block: fail before any state is written
        executor_parameters(sweep.slurm, sweep.name)
    _refuse_if_still_running(sweep)
    todo, skipped = select_runs(sweep, retry_failed)
    state = begin_state(sweep, backend, todo, skipped)
    try:
        if backend == "local":
            from storylab.runner.sweep_local import run_local

            run_local(sweep, todo, state, jobs, progress)
        elif todo:
            from storylab.runner.sweep_slurm import submit, wait as wait_for

            submitted = submit(sweep, todo, state, cluster)
            if wait:
                wait_for(sweep, todo, submitted, state, progress)
    finally:  # also after Ctrl-C: the summary and index show what did finish
        write_summary(state)
        write_index()
    return SweepOutcome(sweep, state, [r.name for r in todo], skipped, wait)


def _refuse_if_still_running(sweep: Sweep) -> None:
    """Launching again while earlier jobs of this sweep still run would start each run twice."""
    from storylab.runner.sweep_state import read_state, standings

    previous = read_state(sweep.folder)
    busy = [name for name, (standing, _) in standings(previous).items() if standing in ("pending", "running")] \
        if previous.get("runs") else []
    if busy:
        raise ParameterError(f"sweep {sweep.name}: {len(busy)} runs of an earlier launch are still pending or running "
                             f"(python -m storylab status {sweep.name}); wait for them or cancel their jobs")
