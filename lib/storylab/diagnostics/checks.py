"""The value checks of notebook 06's parameters, run before any compute.

`check_notebook_values(values, base)` has the signature of the runner's per-notebook checks
(`storylab.runner.notebook_checks.CHECKS`): it receives every parameter (types already
checked against the parameters cell), raises a one-line ValueError naming the parameter,
and returns the values with run folders given as relative paths made absolute against
`base`, the directory the command started in (run ids and names are kept as they are).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storylab.checks import check_int
from storylab.devices import check_device_name


def check_notebook_values(values: dict[str, Any], base: Path) -> dict[str, Any]:
    from storylab.diagnostics.pairs import FUZZ_PHENOMENA, PHENOMENA
    from storylab.diagnostics.run_models import BASELINE_FAMILIES
    from storylab.paths import user_path

    runs = values.get("runs")
    if runs is not None:
        if not isinstance(runs, list) or not runs or not all(isinstance(r, str) and r for r in runs):
            raise ValueError(f"runs: expected a non-empty list of run folders, run ids or notebook names (or None), got {runs!r}")
        values["runs"] = [str(user_path(r, base)) if r.startswith(("~", ".")) or (base / r).is_dir() else r for r in runs]
    _subset(values, "baselines", BASELINE_FAMILIES, allow_empty=True)
    _subset(values, "phenomena", PHENOMENA, optional=True)
    _subset(values, "fuzz_phenomena", FUZZ_PHENOMENA)
    for name in ("n_val_stories", "pairs_per_phenomenon", "fuzz_pairs_per_distance", "n_hard_stories", "n_worst", "top_k"):
        if name in values:
            check_int(name, values[name], minimum=1)
    if "seed" in values:
        check_int("seed", values["seed"])
    inserted = values.get("inserted_sentences", [0])
    if not isinstance(inserted, list) or not inserted:
        raise ValueError(f"inserted_sentences: expected a non-empty list of sentence counts, got {inserted!r}")
    for k in inserted:
        check_int("inserted_sentences", k)
    hard = values.get("hard_models")
    if hard is not None and (not isinstance(hard, list) or len(hard) != 2 or not all(isinstance(h, str) for h in hard)
                             or hard[0] == hard[1]):
        raise ValueError(f"hard_models: expected two different model labels (or None), got {hard!r}")
    check_device_name(values.get("device", "auto"))  # the parameters cell's type (str) already refuses None
    return values


def _subset(values: dict[str, Any], name: str, allowed, optional: bool = False, allow_empty: bool = False) -> None:
    if name not in values or (optional and values[name] is None):
        return
    value = values[name]
    if not isinstance(value, list) or (not value and not allow_empty) or any(v not in allowed for v in value):
        raise ValueError(f"{name}: expected a {'' if allow_empty else 'non-empty '}list of some of {list(allowed)}, got {value!r}")
