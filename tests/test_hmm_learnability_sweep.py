"""The HMM learnability sweeps are the study they claim to be: one token budget, valid corpora, true state counts.

(tests/test_sweep.py checks every shipped sweep against its notebook's parameters; these check the design.)
"""

from __future__ import annotations

import pytest
import yaml

from storylab.corpora import normalize_spec
from storylab.corpora.hmm_source import DEFAULTS, source_model
from storylab.paths import PARAMS_DIR
from storylab.runner.sweep import expand

SWEEPS = PARAMS_DIR / "sweeps"


def planned_runs(name: str, smoke: bool = False) -> list[dict]:
    data = yaml.safe_load((SWEEPS / f"{name}.yaml").read_text())
    params, grid, zipped = data.get("params", {}), data.get("grid", {}), data.get("zip", {})
    if smoke:
        block = data["smoke"]
        params = {**params, **block.get("params", {})}
        grid, zipped = block.get("grid", grid), block.get("zip", zipped)
    return [{**params, **combo} for combo in expand(grid, zipped)]


@pytest.mark.parametrize("smoke", [False, True])
def test_every_neural_model_gets_the_same_token_budget(smoke):
    runs = planned_runs("hmm_learnability", smoke) + planned_runs("hmm_learnability_cot", smoke)
    budgets = {run["max_steps"] * run["batch_size"] * run["n_ctx"] for run in runs}
    assert len(budgets) == 1
    assert all(run.get("max_minutes", 1) is None for run in runs if not smoke)  # no wall-clock cut-off


def test_the_grid_crosses_process_mixing_length_and_model():
    runs = planned_runs("hmm_learnability")
    corpora = [normalize_spec(run["corpus"]) for run in runs]
    assert {(c["kind"], c["emission"] if c["kind"] == "cyclic" else None, c["epsilon"] if c["kind"] == "cyclic" else None)
            for c in corpora} == {("random", None, None), ("mess3", None, None),
                                  *((("cyclic", e, eps)) for e in ("stochastic", "deterministic") for eps in (0.1, 0.01, 0.0))}
    models = {(run["architecture"], run["n_layers"]) for run in runs}
    assert models == {("transformer", 1), ("transformer", 2), ("transformer", 4), ("transformer", 8), ("lstm", 1)}
    assert len({run["d_model"] for run in runs}) == 1  # equal width
    for run, corpus in zip(runs, corpora):  # whole sequences (plus end-of-text) tile the context exactly
        assert run["n_ctx"] % (corpus["length"] + 1) == 0
    assert len(runs) == 8 * 3 * 5


def test_em_runs_fit_the_true_number_of_states_on_the_same_corpora():
    em = planned_runs("hmm_learnability_em")
    neural = {yaml.safe_dump(run["corpus"], sort_keys=True) for run in planned_runs("hmm_learnability")}
    assert {yaml.safe_dump(run["corpus"], sort_keys=True) for run in em} == neural
    for run in em + planned_runs("hmm_learnability_em", smoke=True):
        spec = normalize_spec(run["corpus"])
        true_model = source_model({**DEFAULTS, **{k: v for k, v in spec.items() if v is not None}})
        assert run["n_states"] == true_model.n_states


def test_cot_sweep_varies_only_cot_every_within_a_process():
    corpora = [normalize_spec(run["corpus"]) for run in planned_runs("hmm_learnability_cot")]
    assert {c["cot_every"] for c in corpora} == {None, 4, 16}
    without_cot = {yaml.safe_dump({**c, "cot_every": None}, sort_keys=True) for c in corpora}
    assert len(without_cot) * 3 == len({yaml.safe_dump(c, sort_keys=True) for c in corpora})
