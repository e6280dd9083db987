"""Run a pipeline file: notebooks in order, each a run; a failed step never stops the rest.

    # params/pipeline.yaml
    steps:
      - notebook: 01_tokenizers
        name: main              # optional run name
        params: {rows: 2000}    # parameter overrides

A step's params may also come from a file (`params_file: params/x.yaml`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storylab.paths import PROJECT_ROOT
from storylab.runner.execute import RunResult, effective_parameters, resolve_notebook, run_notebook
from storylab.runner.params import ParameterError, load_params_file, read_yaml_mapping


def load_pipeline(path: str | Path) -> list[dict[str, Any]]:
    """Read and check every step (notebook exists, parameters fit) before running any."""
    data = read_yaml_mapping(path, f"pipeline {str(path)!r}", "a mapping with a 'steps' list")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ParameterError(f"pipeline {str(path)!r}: expected a non-empty 'steps' list")
    checked = []
    for number, step in enumerate(steps, 1):
        if not isinstance(step, dict) or "notebook" not in step:
            raise ParameterError(f"pipeline {str(path)!r}: step {number} needs a 'notebook'")
        unknown = set(step) - {"notebook", "name", "params", "params_file"}
        if unknown:
            raise ParameterError(f"pipeline {str(path)!r}: step {number} has unknown key(s) {sorted(unknown)}")
        params = {}
        if step.get("params_file"):
            params.update(load_params_file(PROJECT_ROOT / step["params_file"]))
        params.update(step.get("params") or {})
        notebook = resolve_notebook(step["notebook"])
        effective_parameters(notebook, params)  # raises on a bad name or type
        checked.append({"notebook": notebook, "name": step.get("name"), "params": params})
    return checked


def run_pipeline(path: str | Path, force: bool = False, progress: bool = True) -> list[RunResult]:
    results = []
    for number, step in enumerate(load_pipeline(path), 1):
        print(f"[{number}] {step['notebook'].stem} {step['params'] or ''}", flush=True)
        result = run_notebook(step["notebook"], step["params"], name=step["name"], force=force, progress=progress)
        print(f"    {result.status}: {result.folder}" + (f" — {result.error}" if result.error else ""), flush=True)
        results.append(result)
    return results
