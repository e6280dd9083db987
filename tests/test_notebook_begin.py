"""`storylab.notebook.begin`: the first call of every notebook, by hand, under papermill and under the runner."""

import json
import math
import os
from pathlib import Path

import nbformat
import pytest
import numpy as np
import yaml

import storylab
from storylab.compare import model_table
from storylab.lm import Score
from storylab.metrics import model_record, save_metrics
from storylab.ngram import UnigramModel
from storylab.notebook import begin
from storylab.paths import NOTEBOOKS_DIR, PROJECT_ROOT, launch_dir, user_path
from storylab.runner.params import ParameterError
from storylab.runs import find_runs, resolve_run

PARAMETERS = '''from typing import Literal
sizes = [512, 1024]                     # a list
mode: Literal["split", "truncate"] = "split"   # a fixed choice
rows: int | None = None                 # a number or nothing
'''


def _notebook(folder: Path, stem: str, parameters: str, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def by_hand(monkeypatch, fresh_outputs):
    """No runner: the environment of a notebook opened in Lab (restored after the test)."""
    for name in ("STORYLAB_RUN_DIR", "STORYLAB_NOTEBOOK", "STORYLAB_LAUNCH_DIR"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return fresh_outputs


def test_bad_values_are_one_line_errors_with_a_hint_for_plain_papermill(tmp_path, by_hand):
    path = _notebook(tmp_path, "toy", PARAMETERS, "")
    with pytest.raises(ParameterError) as error:
        begin({"sizes": "[256, 512]", "mode": "split", "rows": None}, str(path))
    message = str(error.value)
    assert message.startswith("toy: parameter 'sizes' expects list, got '[256, 512]' (str)")
    assert "papermill -y 'sizes: [256, 512]'" in message and "\n" not in message
    assert error.value._render_traceback_() == [f"ParameterError: {message}"]  # what Jupyter shows: one line
    with pytest.raises(ParameterError, match=r"""parameter 'mode' expects "split" \| "truncate", got 'chunk'"""):
        begin({"sizes": [1], "mode": "chunk"}, str(path))
    assert not (by_hand / "interactive").exists()  # nothing written for a bad value


def test_the_notebooks_own_checks_run_in_its_first_cell(tmp_path, by_hand):
    hmm = _notebook(tmp_path, "02_hmm", "n_states = 100   # states\ncorpus = 'stories'   # corpus\n", "")
    with pytest.raises(ParameterError, match="02_hmm: n_states: expected an integer >= 1, got 0"):
        begin({"n_states": 0, "corpus": "stories"}, str(hmm))


def test_by_hand_a_notebook_gets_its_own_first_class_run_folder(tmp_path, by_hand):
    path = _notebook(tmp_path, "toy", PARAMETERS, "")
    namespace = {"sizes": [256], "mode": "truncate", "rows": 5, "unrelated": object()}
    assert begin(namespace, str(path)) is None
    folder = by_hand / "interactive" / "toy"
    assert storylab.run_dir() == folder and namespace["rows"] == 5
    assert yaml.safe_load((folder / "params.yaml").read_text()) == {"sizes": [256], "mode": "truncate", "rows": 5}
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "interactive" and status["pid"] == os.getpid() and status["host"]
    assert status["started"] and status["updated"]

    unigram = UnigramModel(30, 0).fit([np.arange(30)])
    record = model_record(unigram, Score(total_nats=100 * math.log(2), n_tokens=50, n_chars=100), tokenizer="char",
                          corpus={"source": "stories"}, elapsed_s=1.0)
    save_metrics({"models": [record]})  # into run_dir(): the interactive folder
    assert resolve_run("interactive", "toy").folder == folder
    assert resolve_run(str(folder), "toy").name == "interactive"
    assert resolve_run(None, "toy").folder == folder  # the latest run with results
    table = model_table()
    assert list(table["run_id"]) == ["interactive/toy"] and list(table["run"]) == ["interactive"]
    from storylab.runner.dashboard import write_index
    assert "interactive" in write_index().read_text()

    begin({"sizes": [256], "mode": "split", "rows": 5}, str(path))  # run again: a new hand run, old metrics gone
    assert not (folder / "metrics.json").exists() and [r.run_id for r in find_runs("toy")] == ["interactive/toy"]
    assert find_runs("toy", finished_only=True) == []  # no results yet


def test_in_lab_relative_paths_resolve_against_the_project_root(tmp_path, by_hand, monkeypatch):
    monkeypatch.chdir(NOTEBOOKS_DIR)  # where JupyterLab starts kernels (make lab)
    assert launch_dir() == PROJECT_ROOT and user_path("README.md") == PROJECT_ROOT / "README.md"
    hmm = _notebook(tmp_path, "02_hmm", "corpus: str | dict = 'stories'   # corpus\n", "")
    namespace = {"corpus": {"source": "file", "path": "README.md"}}
    begin(namespace, str(hmm))
    assert namespace["corpus"] == {"source": "file", "path": str(PROJECT_ROOT / "README.md")}
    monkeypatch.chdir(tmp_path)  # elsewhere (plain papermill, a script): the current directory
    assert launch_dir() == tmp_path
    monkeypatch.setenv("STORYLAB_LAUNCH_DIR", str(PROJECT_ROOT / "params"))  # what the runner gives its kernels
    assert user_path("x.yaml") == PROJECT_ROOT / "params" / "x.yaml"


BEGIN = '''import json, os, storylab, storylab.notebook
storylab.notebook.begin(globals(), {path!r})
(storylab.run_dir() / "metrics.json").write_text(json.dumps({{"sizes": sizes, "cwd": os.getcwd()}}))
'''


@pytest.mark.slow
def test_plain_papermill_gives_the_same_one_line_error_and_a_run_folder(tmp_path, by_hand):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = tmp_path / "toy.ipynb"
    _notebook(tmp_path, "toy", PARAMETERS, BEGIN.format(path=str(path)))
    with pytest.raises(PapermillExecutionError) as error:
        papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), parameters={"sizes": "[256, 512]"},
                                   kernel_name="python3", progress_bar=False)
    assert error.value.ename == "ParameterError"
    assert error.value.evalue.startswith("toy: parameter 'sizes' expects list, got '[256, 512]' (str); plain papermill")
    assert error.value.traceback == [f"ParameterError: {error.value.evalue}"]  # one line, no traceback

    papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), parameters={"sizes": [256, 512]},
                               kernel_name="python3", progress_bar=False)
    folder = by_hand / "interactive" / "toy"
    assert json.loads((folder / "metrics.json").read_text())["sizes"] == [256, 512]
    assert json.loads((folder / "status.json").read_text())["status"] == "interactive"


@pytest.mark.slow
def test_under_the_runner_begin_checks_and_writes_into_the_run_folder(tmp_path, fresh_outputs):
    import subprocess
    import sys

    path = tmp_path / "toy.ipynb"
    _notebook(tmp_path, "toy", PARAMETERS, BEGIN.format(path="toy"))  # the runner tells begin the notebook's file
    done = subprocess.run([sys.executable, "-m", "storylab", "run", str(path), "-p", "sizes=[1, 2]", "--name", "r"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((fresh_outputs / "runs" / "toy" / "r" / "metrics.json").read_text())
    assert metrics["sizes"] == [1, 2] and not (fresh_outputs / "interactive").exists()


@pytest.mark.slow
def test_readme_command_with_a_relative_corpus_path(tmp_path, fresh_outputs):
    """`python -m storylab run 02_hmm -p corpus="{source: file, path: data/x.txt}" -p rows=...` from the
    directory holding data/x.txt, on a toy notebook named 02_hmm (the real one takes minutes), and on
    the real 01_tokenizers with a parameter file given relatively too."""
    import subprocess
    import sys

    (tmp_path / "data").mkdir()
    stories = [f"Story {i}: a cat and a dog went to the park and played with a ball." for i in range(30)]
    (tmp_path / "data" / "x.txt").write_text("\n<|endoftext|>\n".join(stories))
    toy = _notebook(tmp_path / "data", "02_hmm", "corpus: str | dict = 'stories'   # corpus\nrows: int | None = None   # rows\n",
                    "from storylab.corpora import corpus_spec, load_corpus\nfrom storylab.metrics import save_metrics\n"
                    "data = load_corpus(corpus_spec(corpus, rows=rows))\n"
                    "save_metrics({'n_train': len(data.texts('train')), 'path': corpus['path']})\n")
    command = [sys.executable, "-m", "storylab", "run", str(toy), "-p", "corpus={source: file, path: data/x.txt}",
               "-p", "rows=5", "--name", "readme"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = fresh_outputs / "runs" / "02_hmm" / "readme"
    absolute = str(tmp_path / "data" / "x.txt")
    assert yaml.safe_load((folder / "params.yaml").read_text())["corpus"] == {"source": "file", "path": absolute}
    assert json.loads((folder / "metrics.json").read_text()) == {"n_train": 5, "path": absolute}

    (tmp_path / "values.yaml").write_text("vocab_sizes: [260]\nn_examples: 1\n")
    real = subprocess.run([sys.executable, "-m", "storylab", "run", "01_tokenizers", "-f", "values.yaml",
                           "-p", "corpus=data/x.txt", "-p", "rows=20", "--name", "real"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert real.returncode == 0, real.stderr
    params = yaml.safe_load((fresh_outputs / "runs" / "01_tokenizers" / "real" / "params.yaml").read_text())
    assert params["corpus"] == absolute and params["vocab_sizes"] == [260]
