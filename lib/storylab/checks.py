"""Argument checks shared by the library: one-line ValueErrors that name the parameter.

Every computing function checks its arguments before any work, so a typo in a notebook's
parameters cell fails at once with `name: expected ..., got ...`. bool is refused where a
number is expected (it is an int subclass in Python, but `n_states=True` is a mistake).
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
