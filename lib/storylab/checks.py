"""Argument checks shared by the library: one-line ValueErrors that name the parameter.

Every computing function checks its arguments before any work, so a typo in a notebook's
parameters cell fails at once with `name: expected ..., got ...`. bool is refused where a
number is expected (it is an int subclass in Python, but `n_states=True` is a mistake).

The second half checks a dict of notebook parameters by name (`check_positive`,
`check_strings`, `check_choices`, `check_device`, `run_reference`): the runner's
per-notebook checks (`storylab.runner.notebook_checks`) and `storylab.diagnostics.checks`
share them, so a parameter of one kind fails (or resolves) the same way in every notebook.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from storylab.devices import check_device_name
from storylab.paths import user_path
from storylab.runs import INTERACTIVE, LATEST

RUN_KEYWORDS = (LATEST, INTERACTIVE)  # run parameters that name a run, never a path


def check_int(name: str, value: Any, minimum: int = 0, below: int | None = None) -> int:
    """`value` as an int in [minimum, below) (no upper bound when `below` is None)."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum
            or (below is not None and value >= below)):
        wanted = f"in [{minimum}, {below})" if below is not None else f">= {minimum}"
        raise ValueError(f"{name}: expected an integer {wanted}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, minimum: float = 0.0, strict: bool = False) -> float:
    """`value` as a float >= minimum (> minimum when `strict`)."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and (value > minimum if strict else value >= minimum))
    if not ok:
        raise ValueError(f"{name}: expected a number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return float(value)


# --- notebook parameters, by name in a dict of values --------------------------------------------

def check_positive(values: dict[str, Any], *names: str, minimum: int = 1, optional: bool = False) -> None:
    """Each of `names` present in `values` an integer >= `minimum` (None allowed when `optional`)."""
    for name in names:
        if name in values and not (optional and values[name] is None):
            check_int(name, values[name], minimum=minimum)


def check_strings(values: dict[str, Any], name: str, allow_empty: bool = False) -> None:
    """`values[name]` (when present) a list of strings, non-empty unless `allow_empty`."""
    value = values.get(name)
    if name in values and (not isinstance(value, list) or not all(isinstance(s, str) for s in value)
                           or (not allow_empty and not value)):
        raise ValueError(f"{name}: expected a {'' if allow_empty else 'non-empty '}list of strings, got {value!r}")


def check_choices(values: dict[str, Any], name: str, allowed: Iterable, optional: bool = False,
                  allow_empty: bool = False) -> None:
    """`values[name]` (when present) a list of some of `allowed`, non-empty unless `allow_empty`
    (None allowed when `optional`)."""
    if name not in values or (optional and values[name] is None):
        return
    value, allowed = values[name], list(allowed)
    if not isinstance(value, list) or (not value and not allow_empty) or any(v not in allowed for v in value):
        wanted = f"a {'' if allow_empty else 'non-empty '}list of some of {allowed}" + (" (or None)" if optional else "")
        raise ValueError(f"{name}: expected {wanted}, got {value!r}")


def check_device(values: dict[str, Any]) -> None:
    """How `device` is written (CUDA need not be here: a run may be submitted from a login node)."""
    check_device_name(values.get("device", "auto"))


def run_reference(value: Any, base: Path) -> Any:
    """An earlier run named by a parameter: a path made absolute against `base`, anything else kept.

    A path is what starts with `~` or `.`, an absolute path, or a folder that exists under
    `base`. Anything else is kept as given, for the notebook to resolve: a run name (`main`),
    a run id as 05_compare lists it (`runs/03_transformer/main`), `notebook/name`
    (`03_transformer/main`), a keyword (`latest`), or a folder an earlier pipeline step has
    yet to make (the notebook then tries it under the launch directory, which is `base`).
    """
    if not isinstance(value, str) or not value or value in RUN_KEYWORDS:
        return value
    looks_like_path = value.startswith(("~", ".")) or os.path.isabs(value) or (base / value).exists()
    return str(user_path(value, base)) if looks_like_path else value
