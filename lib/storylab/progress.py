"""Progress bars that suit where the code runs: a widget in JupyterLab, one line in a report.

- In a notebook opened in JupyterLab: `tqdm.notebook` (an ipywidgets bar that updates in
  place; ipywidgets is a normal dependency, so no `IProgress not found` warning).
- In a run executed by the runner (papermill, `STORYLAB_HEADLESS=1` in the kernel's
  environment): nothing while the loop runs and ONE final line when it ends, so a report
  shows where each loop finished instead of dozens of redraws.
- Anywhere else (a terminal, a script, a sweep's log): plain `tqdm`.

Every long loop of the library (EM, training, sweeps) makes its bar with `progress_bar`.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm import std

HEADLESS_ENV = "STORYLAB_HEADLESS"


class FinalLineBar(std.tqdm):
    """A tqdm bar that prints nothing until it closes, then its final state on one line."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.update(delay=float("inf"), mininterval=float("inf"))
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        if not self.disable and hasattr(self, "last_print_t"):
            # tqdm's own close prints the final line only for a bar it displayed before:
            # pretend it was displayed at the start, so it prints that line now.
            self.delay, self.last_print_t = 0, self.start_t
        super().close()


def in_jupyter_frontend() -> bool:
    """True inside a Jupyter kernel (Lab, Notebook; a runner's kernel too: `progress_bar` tells it by HEADLESS_ENV first)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_bar(iterable=None, **kwargs: Any) -> std.tqdm:
    """A tqdm bar (same arguments as `tqdm.tqdm`) of the kind that suits where this runs."""
    if os.environ.get(HEADLESS_ENV):
        return FinalLineBar(iterable, **kwargs)
    if in_jupyter_frontend():
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm(iterable, **kwargs)
    return std.tqdm(iterable, **kwargs)
