"""Run notebooks headlessly: parameter checks, papermill execution, reports, pipelines.

`run_notebook` is the unit: one notebook, one set of parameters, one run folder that
appears only when the run has ended. Pipelines and sweeps are lists of such runs.
"""

from storylab.runner.execute import RunResult, resolve_notebook, run_notebook
from storylab.runner.params import ParameterError, notebook_parameters, parse_cli_overrides, validate_parameters

__all__ = [
    "ParameterError",
    "RunResult",
    "notebook_parameters",
    "parse_cli_overrides",
    "resolve_notebook",
    "run_notebook",
    "validate_parameters",
]
