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
This module only plans a sweep; `sweep_launch` starts it (through `sweep_local` or
`sweep_slurm`).
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
from storylab.runner.names import MAX_NAME_CHARS, check_run_name
from storylab.runner.notebook_checks import effective_parameters
from storylab.runner.params import ParameterError, read_yaml_mapping, resolve_notebook

SWEEP_KEYS = {"notebook", "description", "params", "grid", "zip", "slurm", "smoke", "prefix"}
SMOKE_KEYS = {"params", "grid", "zip", "prefix"}
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._=,+-]+")


@dataclass(frozen=True)
class PlannedRun:
    name: str
    overrides: dict[str, Any]  # base params + this combination: what the run is given
    swept: dict[str, Any]      # only the values this sweep varies (for names, tables, plots)
    params: dict[str, Any] = field(default_factory=dict)  # every parameter of the run, checked


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
    if prefix:
        check_run_name(prefix, f"{where}: prefix")
    try:
        notebook = resolve_notebook(data["notebook"])
    except ParameterError as error:
        raise ParameterError(f"{where}: {error}") from None
    combinations = expand(grid, zipped, where)
    runs = []
    for name, combo in zip(run_names(combinations, prefix), combinations):
        overrides = {**params, **combo}
        try:
            check_run_name(name, f"{where}: run name")
            checked = effective_parameters(notebook, overrides)
        except ParameterError as error:
            raise ParameterError(f"{where}: run {name!r}: {error}") from None
        # the run is given the checked values: user paths absolute, whichever directory it runs in
        runs.append(PlannedRun(name, {k: checked[k] for k in overrides}, combo, checked))
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


def combination_name(values: dict[str, Any], prefix: str = "") -> str:
    """`prefix` + the values that vary, e.g. `smoke-n_states=100,rows=1000`; long names end in a hash.

    (It never starts with '.': a prefix may not, and parameter names are identifiers.)"""
    name = prefix + ",".join(f"{k}={render_value(v)}" for k, v in values.items())
    name = name or "default"
    if len(name) > MAX_NAME_CHARS:  # keep it readable, and unique through the hash
        name = name[:MAX_NAME_CHARS - 11] + "-" + spec_hash(values, 10)
    return name


def run_names(combinations: list[dict[str, Any]], prefix: str = "") -> list[str]:
    """One name per combination; two values that render alike get a hash suffix to stay apart."""
    names = [combination_name(c, prefix) for c in combinations]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return [f"{n[:MAX_NAME_CHARS - 9]}-{spec_hash(c, 8)}" if counts[n] > 1 else n for n, c in zip(names, combinations)]


def _mapping(data: dict, key: str, where: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ParameterError(f"{where}: {key!r} must be a mapping of parameter names, got {json.dumps(value)}")
    return dict(value)


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ParameterError(f"{where}: unknown key {unknown[0]!r}; expected some of: {', '.join(sorted(allowed))}")
