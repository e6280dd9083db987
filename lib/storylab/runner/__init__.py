"""Run notebooks headlessly: parameter checks, papermill execution, reports, pipelines, sweeps.

The modules, each importing only those listed before it:

- `params`: a notebook's parameters cell, type checks, YAML parameter files
- `names`: what may name a run folder
- `process`: who owns a run in progress, is it alive; SIGTERM handled like Ctrl-C
- `notebook_checks`: each notebook's value checks that need no data; user paths made absolute
- `in_progress`: runs in progress (hidden `.tmp-*` folders), dead ones turned into failed runs
- `html`, `report`: shared HTML pieces; each run's offline `report.html`
- `execute`: `run_notebook`, one run, atomically (the unit everything else repeats)
- `pipeline`: steps of a pipeline file, in order
- `sweep`, `sweep_state`, `sweep_local`, `sweep_slurm`, `sweep_summary`, `sweep_launch`:
  plan a sweep, its typed state file, the two backends, its summary, launching it
- `dashboard`: `outputs/index.html`

The package re-exports the few names a script needs (`from storylab.runner import run_notebook`),
each imported on first use: every notebook's first cell (`storylab.notebook`) imports the
parameter checks from here and must not pay for papermill, nbconvert and plotly.
"""

from storylab.lazy_exports import lazy_exports

_EXPORTS = {
    "execute": ["RunResult", "run_notebook"],
    "params": ["ParameterError", "notebook_parameters", "parse_cli_overrides", "resolve_notebook",
               "validate_parameters"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
