"""The first call of every notebook, right after its parameters cell:

    import storylab.notebook
    storylab.notebook.begin(globals(), "02_hmm")

`begin` makes a notebook behave the same under `python -m storylab run`, plain papermill
and JupyterLab:

1. It checks the parameters' current values against the parameters cell (types and
   `Literal[...]` choices) and the notebook's value checks (`storylab.runner.notebook_checks`,
   the same code the runner runs before it starts a notebook). A bad value is a
   `ParameterError` shown as one line, not a traceback.
2. It makes the paths a user gave (corpus files, earlier runs) absolute, in place: against
   the directory `storylab run` started in, the project root in JupyterLab (whose
   kernels start in `notebooks/`), else the current directory.
3. Run by hand (no runner), the notebook gets its own run folder
   `outputs/interactive/<notebook>/`, with `params.yaml` and a `status.json` saying
   `interactive`, so later notebooks (`resolve_run("interactive", ...)`), 05_compare and
   the dashboard see it as a run; `storylab.run_dir()` then returns that folder. Metrics of
   an earlier hand run of the notebook are removed: the folder holds this run's only.

It returns nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from storylab.cache import write_json_atomic, write_text_atomic
from storylab.paths import interactive_dir, launch_dir
from storylab.readers import iso_now
from storylab.runner.notebook_checks import check_values
from storylab.runner.params import ParameterError, notebook_parameters, resolve_notebook, validate_parameters
from storylab.runner.process import this_process

PAPERMILL_HINT = ("; plain papermill passes -p values as strings: give lists, dicts and numbers with -y "
                  "(papermill -y '{name}: [256, 512]'), or run python -m storylab run")


def begin(namespace: dict[str, Any], notebook: str) -> None:
    """Check the notebook's parameters in `namespace` (its `globals()`), make user paths absolute
    in place, and give a notebook run by hand its run folder. See the module docstring."""
    path = Path(os.environ["STORYLAB_NOTEBOOK"]) if os.environ.get("STORYLAB_NOTEBOOK") else resolve_notebook(notebook)
    stem = path.stem
    declared = notebook_parameters(path)
    values = {name: namespace[name] for name in declared if name in namespace}
    strings = [n for n, v in values.items() if isinstance(v, str) and not declared[n].accepts(v)]
    hint = PAPERMILL_HINT.format(name=strings[0]) if strings else ""
    validate_parameters(declared, values, stem, hint)
    checked = check_values(stem, {**{n: p.default for n, p in declared.items()}, **values}, launch_dir())
    for name in values:
        namespace[name] = checked[name]
    folder = interactive_dir() / stem
    if os.environ.get("STORYLAB_RUN_DIR") in (None, "", str(folder)):
        _begin_interactive_run(folder, stem, checked)


def _begin_interactive_run(folder: Path, notebook: str, params: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").unlink(missing_ok=True)
    now = iso_now()
    write_text_atomic(folder / "params.yaml", yaml.safe_dump(params, sort_keys=False))
    write_json_atomic(folder / "status.json", {"status": "interactive", "notebook": notebook, "name": "interactive",
                                               **this_process(), "started": now, "updated": now})
    os.environ["STORYLAB_RUN_DIR"] = str(folder)


__all__ = ["ParameterError", "begin"]
