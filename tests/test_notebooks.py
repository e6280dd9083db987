"""Papermill smoke runs of every notebook with tiny parameters (params/smoke.yaml)."""

import json
import math

import nbformat
import pytest

from storylab.paths import NOTEBOOKS_DIR
from storylab.runner.params import notebook_parameters

NOTEBOOKS = sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebooks_are_committed_clean(stem):
    """No outputs, kernelspec python3, a parameters cell of literals with a comment each."""
    notebook = nbformat.read(str(NOTEBOOKS_DIR / f"{stem}.ipynb"), as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{stem} has outputs"
    parameters = notebook_parameters(NOTEBOOKS_DIR / f"{stem}.ipynb")
    assert parameters and all(p.comment for p in parameters.values()), f"{stem}: every parameter needs a comment"


@pytest.mark.slow
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_smoke_run_finishes_with_metrics_and_report(smoke_runs, stem):
    assert stem in smoke_runs, f"params/smoke.yaml has no step for {stem}"
    result = smoke_runs[stem]
    status = json.loads((result.folder / "status.json").read_text())
    assert status["status"] == "finished", status.get("error")
    assert json.loads((result.folder / "metrics.json").read_text())
    assert (result.folder / "report.html").stat().st_size > 10_000
    # progress bars are one final line per loop in a headless run, never tqdm's widget fallback
    outputs = json.dumps(json.loads((result.folder / "notebook.ipynb").read_text())["cells"])
    assert "IProgress not found" not in outputs and "TqdmWarning" not in outputs


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_notebook_checks_its_parameters_in_the_cell_after_them(stem):
    """Lab, plain papermill and `storylab run` give the same one-line error: the first cell after
    the parameters calls `storylab.notebook.begin`, which checks them against their annotations."""
    cells = nbformat.read(str(NOTEBOOKS_DIR / f"{stem}.ipynb"), as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    at = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    assert "begin(" in code[at + 1].source and "storylab.notebook" in code[at + 1].source


@pytest.mark.slow
def test_tokenizer_notebook_metrics(smoke_runs):
    metrics = json.loads((smoke_runs["01_tokenizers"].folder / "metrics.json").read_text())
    assert metrics["floor_bits_per_char"] > 0
    sizes = metrics["tokenizers"]
    assert len(sizes) == 2
    for stats in sizes.values():
        assert stats["chars_per_token"] > 1 and stats["tokens_per_story"]["max"] >= stats["tokens_per_story"]["median"]


def _metrics(smoke_runs, stem):
    return json.loads((smoke_runs[stem].folder / "metrics.json").read_text())


@pytest.mark.slow
def test_hmm_notebook_records_every_model_and_its_saved_hmm_reproduces_its_score(smoke_runs):
    from storylab.experiment import load_experiment
    from storylab.hmm import CategoricalHMM
    from storylab.lm import score
    from storylab.runs import read_run

    run = read_run(smoke_runs["02_hmm"].folder)
    metrics = run.metrics
    families = [m["family"] for m in metrics["models"]]
    assert families[0] == "hmm" and {"unigram", "bigram", "neural bigram", "kneser-ney"} <= set(families)
    assert metrics["em_iterations"] == 3 and metrics["val_bits_per_char"] > metrics["floor_bits_per_char"]
    for model in metrics["models"]:  # each row's bits/char is its own total nats over the same characters
        assert model["val_bits_per_char"] == pytest.approx(model["val_total_nats"] / math.log(2) / model["val_chars"])
    hmm = CategoricalHMM.load(run.artifact("hmm_path"), device="cpu")
    exp = load_experiment(run.params["corpus"], run.params["tokenizer"], run.params["rows"])
    assert score(hmm, exp.validation).total_nats == pytest.approx(metrics["val_total_nats"], rel=1e-9)


@pytest.mark.slow
def test_transformer_notebook_model_reproduces_its_score_and_exports(smoke_runs):
    from storylab.experiment import load_experiment
    from storylab.lm import score
    from storylab.runs import read_run
    from storylab.transformer import load_lm

    run = read_run(smoke_runs["03_transformer"].folder)
    lm, _ = load_lm(run.artifact("model_path"), device="cpu")
    exp = load_experiment(run.params["corpus"], run.params["tokenizer"], run.params["rows"])
    recorded = run.metrics["models"][0]
    assert score(lm, exp.validation).total_nats == pytest.approx(recorded["val_total_nats"], rel=1e-6)
    assert recorded["val_stride_tokens"] == run.params["n_ctx"] // 2 and recorded["family"] == "transformer"
    assert 0 <= run.metrics["belief_kl_bits_per_symbol"] and run.metrics["mixing_time_steps"] > 0
    assert (run.artifact("hf_path") / "config.json").exists()


@pytest.mark.slow
def test_interpretability_compare_and_diagnostics_metrics_hold_their_figures(smoke_runs):
    interp = _metrics(smoke_runs, "04_interpretability")
    n_points = 2  # the smoke transformer has one layer: embeddings and after it
    assert len(interp["logit_lens_loss_nats"]) == n_points == len(interp["belief_probe_r2"])
    assert 0 <= interp["prev_token_score_max"] <= 1 and interp["belief_probe_r2_best"] > max(interp["belief_probe_r2_shuffled"])
    diagnostics = _metrics(smoke_runs, "06_diagnostics")
    labels = [r["model"] for r in diagnostics["diagnostics"]]
    assert "HMM K=6" in labels and "bigram" in labels
    for record in diagnostics["diagnostics"]:  # the ledger conserves bits: excess = model − true
        assert record["excess_bits_per_char"] == pytest.approx(record["model_bits_per_char"] - record["true_bits_per_char"])
    compare = _metrics(smoke_runs, "05_compare")
    n_models = sum(len(_metrics(smoke_runs, stem).get("models", [])) for stem in ("02_hmm", "03_transformer"))
    assert compare["n_models"] == n_models and compare["n_runs"] == 2


@pytest.mark.slow
def test_transformer_notebook_on_addition_scores_held_out_problems(fresh_outputs):
    from storylab.runner import run_notebook

    knobs = {"corpus": {"source": "addition", "n_problems": 300, "validation": 60}, "tokenizer": "char", "n_layers": 1,
             "d_model": 16, "n_heads": 2, "n_ctx": 32, "batch_size": 4, "max_steps": 4, "warmup_steps": 1, "decay_steps": 3,
             "eval_every": 2, "eval_tokens": 256, "save_every": 4, "max_new_tokens": 4, "addition_eval_problems": 10,
             "prompts": ["13 + 29 ="], "candidates": ["4", "42"], "output_rule": "addition"}
    result = run_notebook("03_transformer", knobs)
    assert result.status == "finished", result.error
    metrics = json.loads((result.folder / "metrics.json").read_text())
    assert 0.0 <= metrics["addition_accuracy"] <= 1.0
    notebook = (result.folder / "notebook.ipynb").read_text()
    assert "validation operand pairs never seen in training" in notebook and "held-out problems" in notebook


@pytest.mark.slow
def test_hmm_notebook_killed_mid_fit_resumes_from_its_checkpoint(fresh_outputs):
    import os
    import signal
    import subprocess
    import sys
    import time

    from storylab.hmm import CategoricalHMM

    # enough iterations that the kill lands mid-fit on a fast machine too (checked below), few
    # enough that the resumed fit ends in seconds
    STATES, ITERATIONS = 20, 120
    args = [sys.executable, "-m", "storylab", "run", "02_hmm", "-p", "corpus={source: stories, n_stories: 60, validation: 10}",
            "-p", "tokenizer=char", "-p", f"n_states={STATES}", "-p", f"n_iter={ITERATIONS}", "-p", "tol=0", "-p", "kn_orders=[]",
            "-p", "neural_bigram_steps=2", "-p", "max_new_tokens=2", "--name", "resumed"]
    killed = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    checkpoints = fresh_outputs / "checkpoints" / "hmm"
    while time.monotonic() < deadline and not list(checkpoints.glob("*/hmm.safetensors")):
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    (saved,) = checkpoints.glob("*/hmm.safetensors")
    before = CategoricalHMM.load(saved.parent, device="cpu").history
    assert 1 <= len(before) < ITERATIONS
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    after = CategoricalHMM.load(fresh_outputs / "runs" / "02_hmm" / "resumed" / "hmm", device="cpu").history
    assert len(after) == ITERATIONS and after[: len(before)] == before  # the first rows come from the checkpoint, timings and all
