"""Run a pipeline file: notebooks in order, each a run; a failed step never stops the rest.

    # params/pipeline.yaml
    steps:
      - notebook: 01_tokenizers
        name: main              # optional run name
        params: {rows: 2000}    # parameter overrides

A step's params may also come from a file (`params_file: params/x.yaml`, relative to the
directory the command started in; `params:` win over it). Every step is checked before the
first one runs, as `run_notebook` would check it (`execute.check_run_target`): a step that
would fail its checks never lets the steps before it run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storylab.paths import user_path
from storylab.runner.execute import RunResult, check_run_target, default_run_name, run_notebook
from storylab.runner.names import check_run_name
from storylab.runner.notebook_checks import effective_parameters
from storylab.runner.params import ParameterError, read_yaml_mapping, resolve_notebook

STEP_KEYS = {"notebook", "name", "params", "params_file"}


@dataclass(frozen=True)
class Step:
    notebook: Path
    name: str | None
    params: dict[str, Any]       # the overrides the step gives, checked (user paths absolute)


def load_pipeline(path: str | Path, force: bool = False) -> list[Step]:
    """Read and check every step (notebook, parameters, run name) before running any.

    Unless `force`, a step whose run is in progress, cannot be read or already finished with
    other parameters is an error here, before the first step runs, rather than after the
    steps before it."""
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
        if not isinstance(step.get("params") or {}, dict):
            raise ParameterError(f"{where}: step {number}: 'params' must be a mapping of parameter names")
        try:
            params = _params_file(step.get("params_file"))
            params.update(step.get("params") or {})
            notebook = resolve_notebook(step["notebook"])
            name = check_run_name(str(step["name"]), "name") if step.get("name") is not None else None
            effective = effective_parameters(notebook, params)
        except ParameterError as error:
            raise ParameterError(f"{where}: step {number}: {error}") from None
        check_run_target(notebook.stem, name or default_run_name(effective), effective, force, f"{where}: step {number}")
        checked.append(Step(notebook, name, {k: effective[k] for k in params}))
    return checked


def _params_file(path: Any) -> dict[str, Any]:
    """A step's `params_file:` (resolved against the launch directory), or {} without one."""
    if path is None:
        return {}
    if not isinstance(path, str) or not path:
        raise ParameterError(f"params_file {path!r}: expected the path of a YAML file of parameter values")
    return dict(read_yaml_mapping(user_path(path), f"params_file {path!r}", "a mapping of parameter names to values"))


def run_pipeline(path: str | Path, force: bool = False, progress: bool = True) -> list[RunResult]:
    results = []
    for number, step in enumerate(load_pipeline(path, force), 1):
        print(f"[{number}] {step.notebook.stem} {step.params or ''}", flush=True)
        result = run_notebook(step.notebook, step.params, name=step.name, force=force, progress=progress)
        print(f"    {result.status}: {result.folder}" + (f" — {result.error}" if result.error else ""), flush=True)
        results.append(result)
    return results
