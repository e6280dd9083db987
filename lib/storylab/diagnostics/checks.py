"""The value checks of notebook 06's parameters, run before any compute.

`check_notebook_values(values, base)` has the signature of the runner's per-notebook checks
(`storylab.runner.notebook_checks.CHECKS`): it receives every parameter (types already
checked against the parameters cell), raises a one-line ValueError naming the parameter,
and returns the values with each run reference resolved by `storylab.checks.run_reference`
(the rule 04's `model_run` and `hmm_run` follow): a path made absolute against `base`, the
directory the command started in; run ids and names kept as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storylab.checks import check_choices, check_device, check_int, check_positive, run_reference


def check_notebook_values(values: dict[str, Any], base: Path) -> dict[str, Any]:
    from storylab.diagnostics.pairs import FUZZ_PHENOMENA, PHENOMENA
    from storylab.diagnostics.run_models import BASELINE_FAMILIES

    runs = values.get("runs")
    if runs is not None:
        if not isinstance(runs, list) or not runs or not all(isinstance(r, str) and r for r in runs):
            raise ValueError(f"runs: expected a non-empty list of run folders, run ids or notebook names (or None), got {runs!r}")
        values["runs"] = [run_reference(r, base) for r in runs]
    check_choices(values, "baselines", BASELINE_FAMILIES, allow_empty=True)
    check_choices(values, "phenomena", PHENOMENA, optional=True)
    check_choices(values, "fuzz_phenomena", FUZZ_PHENOMENA)
    check_positive(values, "n_val_stories", "pairs_per_phenomenon", "fuzz_pairs_per_distance", "n_hard_stories", "n_worst",
                   "top_k")
    check_positive(values, "seed", minimum=0)
    inserted = values.get("inserted_sentences", [0])
    if not isinstance(inserted, list) or not inserted:
        raise ValueError(f"inserted_sentences: expected a non-empty list of sentence counts, got {inserted!r}")
    for k in inserted:
        check_int("inserted_sentences", k)
    hard = values.get("hard_models")
    if hard is not None and (not isinstance(hard, list) or len(hard) != 2 or not all(isinstance(h, str) for h in hard)
                             or hard[0] == hard[1]):
        raise ValueError(f"hard_models: expected two different model labels (or None), got {hard!r}")
    check_device(values)
    return values
