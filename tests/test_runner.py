"""The runner: parameter checks before compute, atomic run folders, reports and the index."""

import json
import subprocess
import sys

import nbformat
import pytest

from storylab.runner import ParameterError, notebook_parameters, parse_cli_overrides, run_notebook, validate_parameters
from storylab.runner.report import write_index

PARAMETERS = '''rows = 10                      # stories to keep
learning_rate = 0.001          # a float: ints are fine too
name: str | None = None        # optional label
sizes = [1, 2]                 # a list
spec: str | dict = "stories"   # a spec
fail = False                   # raise in the second cell
anything = None                # no type: anything goes
'''
BODY = '''import plotly.graph_objects as go
from storylab import plots
from storylab.metrics import save_metrics
plots.setup()
save_metrics({"rows": rows, "val_bits_per_char": 1.5})
if fail:
    raise RuntimeError("planned failure")
go.Figure(go.Scatter(x=[1, 2, 3], y=[rows, 2, 1]))
'''


@pytest.fixture
def toy_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# toy"), params, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_parameters_cell_is_read_with_types_and_comments(toy_notebook):
    declared = notebook_parameters(toy_notebook)
    assert list(declared) == ["rows", "learning_rate", "name", "sizes", "spec", "fail", "anything"]
    assert declared["rows"].default == 10 and declared["rows"].comment == "stories to keep"
    assert declared["name"].type_label() == "str | None" and declared["anything"].types is None


def test_overrides_are_checked(toy_notebook):
    declared = notebook_parameters(toy_notebook)
    ok = validate_parameters(declared, {"rows": 5, "learning_rate": 1, "name": "x", "spec": {"source": "addition"},
                                        "anything": [1]})
    assert ok["learning_rate"] == 1
    with pytest.raises(ParameterError, match=r"unknown parameter 'row'; did you mean 'rows'\?"):
        validate_parameters(declared, {"row": 5})
    with pytest.raises(ParameterError, match=r"parameter 'rows' expects int, got 'abc' \(str\)"):
        validate_parameters(declared, {"rows": "abc"})
    with pytest.raises(ParameterError, match="expects bool"):
        validate_parameters(declared, {"fail": 1})
    with pytest.raises(ParameterError, match="expects int"):
        validate_parameters(declared, {"rows": True})


def test_cli_values_parse_as_yaml():
    parsed = parse_cli_overrides(["sizes=[256,512]", "rows=abc", "lr=1e-3", "spec={source: addition}", "x=null"])
    assert parsed == {"sizes": [256, 512], "rows": "abc", "lr": 0.001, "spec": {"source": "addition"}, "x": None}
    with pytest.raises(ParameterError, match="expected name=value"):
        parse_cli_overrides(["rows"])


@pytest.mark.parametrize("args, message", [
    (["-p", "rows=abc"], "error: toy: parameter 'rows' expects int, got 'abc' (str)"),
    (["-p", "row=3"], "error: toy: unknown parameter 'row'; did you mean 'rows'?"),
])
def test_cli_rejects_bad_parameters_in_one_line_without_a_run_folder(toy_notebook, fresh_outputs, args, message):
    done = subprocess.run([sys.executable, "-m", "storylab", "run", str(toy_notebook), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == message
    assert not (fresh_outputs / "runs").exists()


def test_cli_unknown_notebook(fresh_outputs):
    done = subprocess.run([sys.executable, "-m", "storylab", "run", "09_nothing"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not found" in done.stderr


@pytest.mark.slow
def test_finished_run_has_all_files_and_is_reused(toy_notebook, fresh_outputs):
    result = run_notebook(toy_notebook, {"rows": 7}, name="seven")
    folder = fresh_outputs / "runs" / "toy" / "seven"
    assert result.status == "finished" and result.folder == folder
    assert {p.name for p in folder.iterdir()} >= {"notebook.ipynb", "report.html", "params.yaml", "metrics.json", "status.json"}
    assert json.loads((folder / "metrics.json").read_text())["rows"] == 7
    report = (folder / "report.html").read_text()
    assert 'src="../../../assets/plotly.min.js"' in report and "Plotly.newPlot" in report
    assert "https://" not in "".join(line for line in report.splitlines() if "<script" in line)
    assert (fresh_outputs / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    assert len(report) < 1_500_000  # plotly.js is shared, not copied into every report
    assert run_notebook(toy_notebook, {"rows": 7}, name="seven").status == "reused"
    assert "seven" in (fresh_outputs / "index.html").read_text()
    assert not [p for p in (fresh_outputs / "runs" / "toy").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_failing_run_keeps_its_notebook_and_says_where_it_failed(toy_notebook, fresh_outputs):
    done = subprocess.run([sys.executable, "-m", "storylab", "run", str(toy_notebook), "-p", "fail=true", "--name", "bad"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    folder = fresh_outputs / "runs" / "toy" / "bad"
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "failed" and status["error"]["ename"] == "RuntimeError"
    assert status["error"]["evalue"] == "planned failure" and status["error"]["cell"] is not None
    assert (folder / "notebook.ipynb").exists() and (folder / "report.html").exists()
    index = write_index().read_text()
    assert "planned failure" in index


def test_interrupted_run_leaves_nothing(toy_notebook, fresh_outputs, monkeypatch):
    import papermill

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_notebook(toy_notebook, {"rows": 3})
    assert list((fresh_outputs / "runs" / "toy").iterdir()) == []
