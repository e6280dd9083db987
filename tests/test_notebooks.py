"""Papermill smoke runs of every notebook with tiny parameters (params/smoke.yaml)."""

import json

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


@pytest.mark.slow
def test_tokenizer_notebook_metrics(smoke_runs):
    metrics = json.loads((smoke_runs["01_tokenizers"].folder / "metrics.json").read_text())
    assert metrics["floor_bits_per_char"] > 0
    sizes = metrics["tokenizers"]
    assert len(sizes) == 2
    for stats in sizes.values():
        assert stats["chars_per_token"] > 1 and stats["tokens_per_story"]["max"] >= stats["tokens_per_story"]["median"]
