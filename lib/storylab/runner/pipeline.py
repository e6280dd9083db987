"""Run a pipeline file: notebooks in order, each a run; a failed step never stops the rest.

    # params/pipeline.yaml
    steps:
      - notebook: 01_tokenizers
        name: main              # optional run name
        params: {rows: 2000}    # parameter overrides

A step's params may also come from a file (`params_file: params/x.yaml`, relative to the
project root). Every step is checked before the first one runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storylab.paths import PROJECT_ROOT, runs_dir
from storylab.runner.execute import RunResult, default_run_name, run_notebook
from storylab.runner.names import check_run_name
from storylab.runner.notebook_checks import effective_parameters
from storylab.runner.params import ParameterError, load_params_file, read_yaml_mapping, resolve_notebook
from storylab.runs import read_run

STEP_KEYS = {"notebook", "name", "params", "params_file"}


@dataclass(frozen=True)
class Step:
    notebook: Path
    name: str | None
    params: dict[str, Any]       # the overrides the step gives, checked (user paths absolute)


def load_pipeline(path: str | Path, force: bool = False) -> list[Step]:
    """Read and check every step (notebook, parameters, run name) before running any.

    Unless `force`, a step whose named run already finished with other parameters is an
    error here, before the first step runs, rather than after the steps before it."""
    where = f"pipeline {str(path)!r}"
    data = read_yaml_mapping(path, where, "a mapping with a 'steps' list")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ParameterError(f"{where}: expected a non-empty 'steps' list")
    checked = []
    for number, step in enumerate(steps, 1):
        if not isinstance(step, dict) or "notebook" not in step:
            raise ParameterError(f"{where}: step {number} needs a 'notebook'")
        unknown = set(step) - STEP_KEYS
        if unknown:
            raise ParameterError(f"{where}: step {number} has unknown key(s) {sorted(unknown)}")
        params = dict(load_params_file(PROJECT_ROOT / step["params_file"])) if step.get("params_file") else {}
        if not isinstance(step.get("params") or {}, dict):
            raise ParameterError(f"{where}: step {number}: 'params' must be a mapping of parameter names")
        params.update(step.get("params") or {})
        try:
            notebook = resolve_notebook(step["notebook"])
            name = check_run_name(str(step["name"]), "name") if step.get("name") is not None else None
            effective = effective_parameters(notebook, params)
        except ParameterError as error:
            raise ParameterError(f"{where}: step {number}: {error}") from None
        if not force:
            _check_not_replacing(notebook, name or default_run_name(effective), effective, f"{where}: step {number}")
        checked.append(Step(notebook, name, {k: effective[k] for k in params}))
    return checked


def _check_not_replacing(notebook: Path, name: str, effective: dict[str, Any], where: str) -> None:
    existing = read_run(runs_dir() / notebook.stem / name)
    if existing.finished and existing.params != effective:
        changed = sorted(k for k in {*existing.params, *effective} if existing.params.get(k) != effective.get(k))
        raise ParameterError(f"{where}: the finished run {existing.folder} has other parameters "
                             f"({', '.join(changed[:5])}); use --force to replace it, or give the step another name")


def run_pipeline(path: str | Path, force: bool = False, progress: bool = True) -> list[RunResult]:
    results = []
    for number, step in enumerate(load_pipeline(path, force), 1):
        print(f"[{number}] {step.notebook.stem} {step.params or ''}", flush=True)
        result = run_notebook(step.notebook, step.params, name=step.name, force=force, progress=progress)
        print(f"    {result.status}: {result.folder}" + (f" — {result.error}" if result.error else ""), flush=True)
        results.append(result)
    return results
