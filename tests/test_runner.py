"""The runner: parameter checks before compute, atomic run folders, reports and the index."""

import json
import os
import re
import subprocess
import sys

import nbformat
import yaml
import pytest

from storylab.paths import NOTEBOOKS_DIR
from storylab.runner.dashboard import write_index
from storylab.runner.execute import run_notebook
from storylab.runner.params import ParameterError, notebook_parameters, parse_cli_overrides, validate_parameters

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
    assert "seven" in write_index().read_text()
    assert not [p for p in (fresh_outputs / "runs" / "toy").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_failing_run_keeps_its_notebook_and_says_where_it_failed(toy_notebook, fresh_outputs):
    done = subprocess.run([sys.executable, "-m", "storylab", "run", str(toy_notebook), "-p", "fail=true", "--name", "bad"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert re.fullmatch(r"failed: cell \[\d+\] RuntimeError: planned failure\n", done.stderr), done.stderr
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


def test_the_kernel_gets_the_run_environment_and_the_caller_keeps_its_own(toy_notebook, fresh_outputs, monkeypatch):
    """The run folder, notebook and launch directory go to the kernel's environment only: a script or
    notebook calling run_notebook in-process keeps its os.environ as it was."""
    import asyncio

    import papermill
    from jupyter_client.manager import AsyncKernelManager

    for name in ("STORYLAB_RUN_DIR", "STORYLAB_NOTEBOOK", "STORYLAB_HEADLESS"):
        monkeypatch.delenv(name, raising=False)
    started = {}

    async def start_kernel(self, **kwargs):  # where the kernel process would be launched
        started.update(kwargs)

    def execute_notebook(input_path, output_path, kernel_manager_class, **kwargs):
        assert "STORYLAB_RUN_DIR" not in os.environ and "STORYLAB_HEADLESS" not in os.environ
        asyncio.run(kernel_manager_class().start_kernel())

    monkeypatch.setattr(AsyncKernelManager, "start_kernel", start_kernel)
    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    before = dict(os.environ)
    result = run_notebook(toy_notebook, {"rows": 4}, name="env")
    assert result.status == "finished" and dict(os.environ) == before
    env = started["env"]
    assert env["STORYLAB_RUN_DIR"].startswith(str(fresh_outputs / "runs" / "toy" / ".tmp-env-"))
    assert env["STORYLAB_NOTEBOOK"] == str(toy_notebook) and env["STORYLAB_HEADLESS"] == "1"
    assert env["PATH"] == os.environ["PATH"]  # the rest of the environment is inherited


class DeadKernelError(RuntimeError):
    """What nbclient raises when the kernel process dies (named like it: the runner records the name)."""


def _papermill_that_fails(monkeypatch, failures):
    """papermill.execute_notebook replaced: the first calls raise `failures` in turn, later ones succeed."""
    import papermill
    from storylab.runner import execute

    calls = []

    def execute_notebook(input_path, output_path, **kwargs):
        calls.append(output_path)
        if len(calls) <= len(failures):
            error, cells_started = failures[len(calls) - 1]
            if cells_started:  # papermill saves the notebook with each cell's start time as it goes
                nb = nbformat.v4.new_notebook()
                nb.cells = [nbformat.v4.new_code_cell("x = 1") for _ in range(cells_started)]
                for cell in nb.cells:
                    cell.metadata["papermill"] = {"start_time": "2026-06-01T00:00:00", "status": "running"}
                nbformat.write(nb, output_path)
            raise error

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    monkeypatch.setattr(execute, "KERNEL_RESTART_DELAY_S", (0.0, 0.0))
    return calls


def test_a_kernel_that_failed_to_start_is_started_again_by_run_notebook(toy_notebook, fresh_outputs, monkeypatch):
    """`storylab run`, pipelines and sweeps share the retry: it lives in run_notebook."""
    calls = _papermill_that_fails(monkeypatch, [(RuntimeError("Kernel died before replying to kernel_info"), 0),
                                                (DeadKernelError("Kernel died"), 0)])
    result = run_notebook(toy_notebook, {"rows": 2}, name="restarted")
    assert result.status == "finished" and len(calls) == 3
    status = json.loads((result.folder / "status.json").read_text())
    assert status["status"] == "finished" and status["attempt"] == 3


def test_a_kernel_that_died_mid_run_is_not_started_again(toy_notebook, fresh_outputs, monkeypatch):
    """Out of memory half-way through: papermill names no cell, but the notebook shows cells ran."""
    calls = _papermill_that_fails(monkeypatch, [(DeadKernelError("Kernel died"), 2)])
    result = run_notebook(toy_notebook, {"rows": 2}, name="oom")
    assert result.status == "failed" and len(calls) == 1 and result.error == "DeadKernelError: Kernel died"
    status = json.loads((result.folder / "status.json").read_text())
    assert status["error"]["cells_started"] == 2 and "attempt" not in status


# --- checks before anything is written: names, files, Literal choices, notebook checks ------

def _cli(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "storylab", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def _one_line_error(done, *fragments):
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


@pytest.mark.parametrize("name, problem", [
    ("x" * 300, "at most 100 characters, got 300"),
    ("../escape", "path separator"),
    ("a/b", "path separator"),
    (".hidden", "may not start with '.'"),
    ("tab\there", "control characters"),
])
def test_bad_run_names_are_one_line_errors_before_anything_is_written(toy_notebook, fresh_outputs, name, problem):
    _one_line_error(_cli("run", str(toy_notebook), "--name", name), "--name", problem)
    assert not fresh_outputs.exists() or not any(fresh_outputs.iterdir())


@pytest.mark.parametrize("content, fragment", [
    (None, "is a directory; expected a YAML file"),                       # -f given a directory
    (b"\xff\xfe\x00garbage", "not UTF-8 text (byte 0xff at position 0)"),  # undecodable
    (b"- 1\n- 2\n", "expected a mapping of parameter names to values, got a YAML list"),
    (b"rows: [1, 2\n", "not valid YAML"),
])
def test_bad_parameter_files_name_the_file_in_one_line(toy_notebook, fresh_outputs, tmp_path, content, fragment):
    path = tmp_path / "values.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    _one_line_error(_cli("run", str(toy_notebook), "-f", str(path)), str(path), fragment)
    assert not (fresh_outputs / "runs").exists()


def test_undecodable_pipeline_and_sweep_files_name_the_file(tmp_path, fresh_outputs):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\x80\x81 not text")
    _one_line_error(_cli("pipeline", str(path)), "pipeline", str(path), "not UTF-8 text")
    _one_line_error(_cli("sweep", str(path)), "sweep", str(path), "not UTF-8 text")


LITERAL_PARAMETERS = '''from typing import Literal
mode: Literal["split", "truncate"] = "split"   # a fixed choice
level: Literal[1, 2] | None = None             # a choice or nothing
rows = 3                                       # a number
'''


@pytest.fixture
def literal_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(LITERAL_PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(mode, level, rows)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "choices.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_literal_annotations_are_fixed_choices(literal_notebook, fresh_outputs):
    declared = notebook_parameters(literal_notebook)
    assert list(declared) == ["mode", "level", "rows"]  # the import is skipped
    assert declared["mode"].choices == ("split", "truncate") and declared["mode"].comment == "a fixed choice"
    assert declared["mode"].type_label() == '"split" | "truncate"'
    assert declared["level"].type_label() == "1 | 2 | None"
    assert validate_parameters(declared, {"mode": "truncate", "level": None}) == {"mode": "truncate", "level": None}
    assert validate_parameters(declared, {"level": 2}) == {"level": 2}
    for bad in ({"mode": "chunk"}, {"level": 3}, {"level": True}, {"level": 2.0}):
        with pytest.raises(ParameterError, match="expects"):
            validate_parameters(declared, bad)
    _one_line_error(_cli("run", str(literal_notebook), "-p", "mode=chunk"),
                    """choices: parameter 'mode' expects "split" | "truncate", got 'chunk' (str)""")
    assert not (fresh_outputs / "runs").exists()


@pytest.mark.parametrize("notebook, values, message", [
    ("02_hmm", {"n_states": 0}, "02_hmm: n_states: expected an integer >= 1, got 0"),
    ("02_hmm", {"tokenizer": "bpe:4"}, "02_hmm: tokenizer: bpe vocab_size must be an integer >= 8, got 4"),
    ("02_hmm", {"corpus": "no/such/file.txt"}, "/no/such/file.txt' is not a known corpus"),
    ("02_hmm", {"corpus": {"source": "file", "path": "no/such.txt"}}, "/no/such.txt' does not exist"),
    ("01_tokenizers", {"vocab_sizes": [256, 4]}, "01_tokenizers: tokenizer: bpe vocab_size must be an integer >= 8, got 4"),
    ("03_transformer", {"d_model": 130}, "03_transformer: d_head: d_model=130 is not divisible by n_heads=4"),
    ("03_transformer", {"min_lr": 1.0}, "03_transformer: min_lr: expected <= base_lr=0.003, got 1.0"),
    ("04_interpretability", {"probe_test_fraction": 1.5}, "probe_test_fraction: expected a number between 0 and 1"),
    ("05_compare", {"families": ["lstm"]}, "05_compare: families: expected a list of some of"),
    ("02_hmm", {"n_states": 100, "emission_blocks": 8}, "02_hmm: emission_blocks: expected a divisor of n_states=100"),
    ("02_hmm", {"kn_orders": [2, 6]}, "02_hmm: kn_orders: expected a list of Kneser–Ney orders from 2 to 5"),
    ("03_transformer", {"processes": 3}, "03_transformer: batch_size: 16 windows do not split evenly over 3 processes"),
    ("03_transformer", {"eval_stride": 1000}, "03_transformer: eval_stride: expected at most n_ctx=256"),
    ("03_transformer", {"objective": "masked", "fill_mask_texts": ["no mask"]}, "fill_mask_texts: each text needs exactly one <mask>"),
    ("03_transformer", {"architecture": "lstm", "attention": "topk", "attention_k": 4}, "03_transformer: attention:"),
])
def test_notebook_value_checks_need_no_data(notebook, values, message):
    from storylab.runner.notebook_checks import effective_parameters

    with pytest.raises(ParameterError) as error:
        effective_parameters(NOTEBOOKS_DIR / f"{notebook}.ipynb", values)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_failed_value_check_exits_2_before_any_run_folder(fresh_outputs):
    """Through the command line (a few seconds: the check imports the corpora and tokenizers)."""
    _one_line_error(_cli("run", "02_hmm", "-p", "n_states=0"), "02_hmm: n_states: expected an integer >= 1, got 0")
    assert not (fresh_outputs / "runs").exists()


def test_notebook_checks_make_user_paths_absolute(tmp_path, monkeypatch):
    from storylab.runner.notebook_checks import effective_parameters

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text("One story.\n\nAnother story.\n")
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STORYLAB_LAUNCH_DIR", raising=False)
    as_dict = effective_parameters(NOTEBOOKS_DIR / "02_hmm.ipynb", {"corpus": {"source": "file", "path": "data/x.txt"}})
    assert as_dict["corpus"] == {"source": "file", "path": str(tmp_path / "data" / "x.txt")}
    as_string = effective_parameters(NOTEBOOKS_DIR / "01_tokenizers.ipynb", {"corpus": "data/x.txt"})
    assert as_string["corpus"] == str(tmp_path / "data" / "x.txt")
    assert effective_parameters(NOTEBOOKS_DIR / "02_hmm.ipynb", {})["corpus"] == "stories"  # a name, not a path
    runs = effective_parameters(NOTEBOOKS_DIR / "04_interpretability.ipynb",
                                {"model_run": "runs/mine", "hmm_run": "latest"})
    assert runs["model_run"] == str(tmp_path / "runs" / "mine") and runs["hmm_run"] == "latest"
    assert effective_parameters(NOTEBOOKS_DIR / "04_interpretability.ipynb", {"model_run": "main"})["model_run"] == "main"
    for run_id in ("runs/03_transformer/main", "03_transformer/main"):  # kept for resolve_run, as 06 keeps its runs
        assert effective_parameters(NOTEBOOKS_DIR / "04_interpretability.ipynb", {"model_run": run_id})["model_run"] == run_id
        assert effective_parameters(NOTEBOOKS_DIR / "06_diagnostics.ipynb", {"runs": [run_id]})["runs"] == [run_id]


# --- replacing a run, commands ---------------------------------------------------------------

def _finished_run(outputs, notebook, name, params):
    folder = outputs / "runs" / notebook / name
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    (folder / "status.json").write_text(json.dumps({"status": "finished", "ended": "2026-01-01T00:00:00+00:00"}))
    return folder


def test_a_named_run_with_other_parameters_is_not_replaced_without_force(toy_notebook, fresh_outputs):
    from storylab.runner.notebook_checks import effective_parameters

    folder = _finished_run(fresh_outputs, "toy", "x", effective_parameters(toy_notebook, {"rows": 1}))
    before = sorted(p.name for p in folder.parent.iterdir())
    _one_line_error(_cli("run", str(toy_notebook), "-p", "rows=2", "--name", "x"),
                    f"the finished run {folder} has other parameters (rows: 1 -> 2); use --force")
    assert sorted(p.name for p in folder.parent.iterdir()) == before  # nothing made, nothing replaced
    pipeline = toy_notebook.parent / "pipe.yaml"
    pipeline.write_text(yaml.safe_dump({"steps": [{"notebook": str(toy_notebook), "name": "x", "params": {"rows": 2}}]}))
    _one_line_error(_cli("pipeline", str(pipeline)), "step 1: the finished run", "use --force")


def test_a_pipeline_checks_every_step_as_run_would_before_the_first_runs(toy_notebook, fresh_outputs, tmp_path,
                                                                         monkeypatch):
    """A later step's run that is in progress or unreadable stops the pipeline before its first step,
    not half-way with "nothing was written"; params_file resolves against the launch directory."""
    from storylab.runner.pipeline import load_pipeline
    from storylab.runner.process import this_process

    def pipeline(*steps):
        path = tmp_path / "pipe.yaml"
        path.write_text(yaml.safe_dump({"steps": [{"notebook": str(toy_notebook), "name": "first"}, *steps]}))
        return path

    unreadable = fresh_outputs / "runs" / "toy" / "broken"
    unreadable.mkdir(parents=True)
    (unreadable / "status.json").write_text("{not json")
    with pytest.raises(ParameterError, match=r"pipe.yaml': step 2: .*broken exists but cannot be read .*status.json"):
        load_pipeline(pipeline({"notebook": str(toy_notebook), "name": "broken"}))
    running = fresh_outputs / "runs" / "toy" / ".tmp-busy-0123abcd"
    running.mkdir()
    (running / "status.json").write_text(json.dumps({"status": "running", **this_process()}))
    with pytest.raises(ParameterError, match=r"step 2: a run of toy named 'busy' is in progress"):
        load_pipeline(pipeline({"notebook": str(toy_notebook), "name": "busy"}))
    assert len(load_pipeline(pipeline({"notebook": str(toy_notebook), "name": "busy"}), force=True)) == 2

    elsewhere = tmp_path / "launched-here"
    elsewhere.mkdir()
    (elsewhere / "values.yaml").write_text("rows: 9\n")
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("STORYLAB_LAUNCH_DIR", raising=False)
    steps = load_pipeline(pipeline({"notebook": str(toy_notebook), "name": "from-file", "params_file": "values.yaml"}))
    assert steps[1].params == {"rows": 9}
    with pytest.raises(ParameterError, match=r"pipe.yaml': step 2: params_file 'nothing.yaml': no such file"):
        load_pipeline(pipeline({"notebook": str(toy_notebook), "params_file": "nothing.yaml"}))


@pytest.mark.parametrize("kind", ["pipeline", "sweep"])
def test_a_notebook_that_is_not_a_string_is_a_one_line_error(kind, tmp_path, fresh_outputs):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump({"steps": [{"notebook": 2}]} if kind == "pipeline" else {"notebook": 2}))
    _one_line_error(_cli(kind, str(path)), str(path), "notebook 2: expected a notebook name or path")


def test_params_command_lists_each_parameter(literal_notebook):
    done = _cli("params", str(literal_notebook))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and lines[0].split()[:2] == ["mode", '"split"']
    assert lines[0].endswith("a fixed choice") and lines[2].split()[:3] == ["rows", "int", "3"]


def test_report_command_renders_every_run_even_unreadable_ones(fresh_outputs):
    good = _finished_run(fresh_outputs, "02_hmm", "good", {"n_states": 4})
    (good / "metrics.json").write_text(json.dumps({"val_bits_per_char": 1.25}))
    for name, files in {"listed": {"metrics.json": "[1, 2]"},
                        "boom": {"status.json": json.dumps({"status": "failed", "error": "boom"})},
                        "when": {"status.json": json.dumps({"status": "finished", "ended": 5})},
                        "nojson": {"status.json": "{not json"}}.items():
        folder = _finished_run(fresh_outputs, "02_hmm", name, {})
        for file, text in files.items():
            (folder / file).write_text(text)
    done = _cli("report")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    index = (fresh_outputs / "index.html").read_text()
    assert done.stdout == f"index: {fresh_outputs / 'index.html'}\n" and "1.25" in index and "5 runs, 0 failed, 4 unreadable" in index
    assert "metrics.json: expected a JSON object, got [1, 2]" in index
    assert "status.json: &#x27;error&#x27; must be an object with a &#x27;message&#x27; string, got &quot;boom&quot;" in index
    assert "status.json: &#x27;ended&#x27; must be an ISO time string, got 5" in index
    assert "status.json: not valid JSON" in index


@pytest.mark.slow
def test_force_reruns_and_replaces_and_values_come_from_a_file(toy_notebook, fresh_outputs, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("rows: 4\nname: from-file\n")
    first = _cli("run", str(toy_notebook), "-f", str(values), "-p", "rows=5", "--name", "f", timeout=300)
    assert first.returncode == 0, first.stderr
    folder = fresh_outputs / "runs" / "toy" / "f"
    params = yaml.safe_load((folder / "params.yaml").read_text())
    assert params["rows"] == 5 and params["name"] == "from-file"  # -p wins over -f
    ended = json.loads((folder / "status.json").read_text())["ended"]
    assert _cli("run", str(toy_notebook), "-f", str(values), "-p", "rows=5", "--name", "f").stdout.startswith("reused")
    import time
    time.sleep(1.1)  # status times have a resolution of one second
    forced = _cli("run", str(toy_notebook), "-p", "rows=6", "--name", "f", "--force", timeout=300)
    assert forced.returncode == 0, forced.stderr
    assert yaml.safe_load((folder / "params.yaml").read_text())["rows"] == 6
    assert json.loads((folder / "status.json").read_text())["ended"] > ended
    assert json.loads((folder / "metrics.json").read_text())["rows"] == 6


@pytest.mark.slow
def test_pipeline_command_runs_its_steps_and_writes_the_dashboard(toy_notebook, fresh_outputs, tmp_path):
    pipeline = tmp_path / "pipe.yaml"
    pipeline.write_text(yaml.safe_dump({"steps": [
        {"notebook": str(toy_notebook), "name": "one", "params": {"rows": 1}},
        {"notebook": str(toy_notebook), "name": "bad", "params": {"fail": True}},
        {"notebook": str(toy_notebook), "name": "two", "params": {"rows": 2}}]}))
    done = _cli("pipeline", str(pipeline), timeout=600)
    assert done.returncode == 1, done.stderr  # one step failed, the others ran
    assert re.fullmatch(r"failed: toy/bad: cell \[\d+\] RuntimeError: planned failure\n", done.stderr), done.stderr
    for name, status in (("one", "finished"), ("bad", "failed"), ("two", "finished")):
        assert json.loads((fresh_outputs / "runs" / "toy" / name / "status.json").read_text())["status"] == status
    index = (fresh_outputs / "index.html").read_text()
    assert all(f">{name}</a>" in index for name in ("one", "bad", "two"))


def test_shipped_pipelines_load_and_every_step_validates():
    """params/pipeline.yaml (the main job) and smoke.yaml: notebooks, names and every parameter
    checked as the runner would before running anything (imports the corpora and transformer
    configs: a few seconds)."""
    from storylab.paths import PARAMS_DIR
    from storylab.runner.pipeline import load_pipeline

    main = load_pipeline(PARAMS_DIR / "pipeline.yaml", force=True)
    assert [s.notebook.stem for s in main][:3] == ["01_tokenizers", "02_hmm", "03_transformer"]
    assert {s.notebook.stem for s in main} >= {"01_tokenizers", "02_hmm", "03_transformer", "04_interpretability",
                                               "05_compare"}
    assert all(s.name for s in main)
    from storylab.runner.notebook_checks import effective_parameters

    steps = {(s.notebook.stem, s.name): s for s in main}
    hmm, transformer = (effective_parameters(steps[(nb, "main")].notebook, steps[(nb, "main")].params)
                        for nb in ("02_hmm", "03_transformer"))
    assert all(hmm[k] == transformer[k] for k in ("corpus", "rows", "tokenizer"))  # 05 compares like with like
    story_04 = steps[("04_interpretability", "main")].params
    assert story_04["model_run"] == "main" and story_04["hmm_run"] == "main"  # 04 opens the story transformer
    smoke = load_pipeline(PARAMS_DIR / "smoke.yaml", force=True)
    assert len(smoke) >= 5


@pytest.mark.parametrize("stem", sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")))
def test_every_notebooks_defaults_pass_its_own_checks(stem):
    """What `storylab.notebook.begin` checks in each notebook's first cell must accept the notebook as committed."""
    from storylab.runner.notebook_checks import CHECKS, effective_parameters

    values = effective_parameters(NOTEBOOKS_DIR / f"{stem}.ipynb", {})
    assert values.keys() == notebook_parameters(NOTEBOOKS_DIR / f"{stem}.ipynb").keys()
    assert stem in CHECKS  # every notebook has value checks


# --- the parameters cell, notebook names and value checks, in-process (storylab.runner.params) --

def _raw_notebook(folder, cells, name="raw.ipynb"):
    """A notebook written as plain JSON, as a hand-edited file may be (the runner does not go through nbformat)."""
    path = folder / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _parameters_notebook(folder, source, name="cell.ipynb"):
    return _raw_notebook(folder, [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source}], name)


def _error(call, *args):
    with pytest.raises(ParameterError) as error:
        call(*args)
    return str(error.value)


@pytest.fixture
def notebooks_dir(tmp_path, monkeypatch):
    """A notebooks folder of four empty notebooks, two of them sharing the prefix 02_hmm;
    the current directory is elsewhere, so a bare file name does not name a file there."""
    from storylab.runner import params

    folder = tmp_path / "notebooks"
    folder.mkdir()
    for stem in ("01_tokenizers", "02_hmm", "02_hmm_big", "03_transformer"):
        (folder / f"{stem}.ipynb").write_text("{}")
    monkeypatch.setattr(params, "NOTEBOOKS_DIR", folder)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return folder


def test_notebook_names_resolve_by_exact_stem_prefix_or_file_name(notebooks_dir):
    from storylab.runner.params import resolve_notebook

    assert resolve_notebook("01") == notebooks_dir / "01_tokenizers.ipynb"   # a prefix matching one notebook
    assert resolve_notebook("02_hmm") == notebooks_dir / "02_hmm.ipynb"     # exact, though 02_hmm_big shares it
    assert resolve_notebook("02_hmm_b") == notebooks_dir / "02_hmm_big.ipynb"
    # not a file in the current directory: the name, .ipynb dropped, is looked up among the notebooks
    assert resolve_notebook("02_hmm.ipynb") == notebooks_dir / "02_hmm.ipynb"
    mine = notebooks_dir.parent / "elsewhere" / "mine.ipynb"
    mine.write_text("{}")
    assert resolve_notebook("mine.ipynb") == mine  # an existing .ipynb file is itself
    expected = "expected one of: 01_tokenizers, 02_hmm, 02_hmm_big, 03_transformer"
    assert _error(resolve_notebook, "09_nothing") == f"notebook '09_nothing' not found; {expected}"
    assert _error(resolve_notebook, "02") == f"notebook '02' not found; {expected}"  # two notebooks match
    assert _error(resolve_notebook, 2) == "notebook 2: expected a notebook name or path (e.g. 02_hmm), got a int"


def test_an_empty_notebook_name_matches_nothing_even_with_one_notebook(notebooks_dir):
    from storylab.runner.params import resolve_notebook

    for other in ("01_tokenizers", "02_hmm_big", "03_transformer"):
        (notebooks_dir / f"{other}.ipynb").unlink()
    assert _error(resolve_notebook, "") == "notebook '' not found; expected one of: 02_hmm"


def test_unreadable_notebooks_are_one_line_errors_naming_the_file(tmp_path):
    from storylab.runner.params import notebook_parameters, read_notebook_json

    path = tmp_path / "x.ipynb"
    assert _error(read_notebook_json, path) == f"notebook {str(path)!r}: no such file"
    path.write_text("{not json")
    message = _error(read_notebook_json, path)
    assert message.startswith(f"notebook {str(path)!r}: not valid JSON (")
    assert message.endswith("); expected a Jupyter notebook (.ipynb JSON)")
    for content in ("[1, 2]", '{"metadata": {}}', '{"cells": {}}'):  # valid JSON, not a notebook
        path.write_text(content)
        assert _error(read_notebook_json, path) == (f"notebook {str(path)!r}: expected a Jupyter notebook "
                                                    "(a JSON object with 'cells')")
    untagged = _raw_notebook(tmp_path, [{"cell_type": "code", "metadata": {}, "source": "rows = 1"}])
    assert _error(notebook_parameters, untagged) == f"notebook {str(untagged)!r} has no cell tagged 'parameters'"


def test_the_parameters_cell_is_the_tagged_code_cell(tmp_path):
    from storylab.runner.params import notebook_parameters, parameters_source

    path = _raw_notebook(tmp_path, [
        {"cell_type": "code", "metadata": {}, "source": ["import os\n"]},                 # code, not tagged
        {"cell_type": "markdown", "metadata": {"tags": ["parameters"]}, "source": "# x"},  # tagged, not code
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["rows = 1\n", "lr = 0.1\n"]}])
    assert parameters_source(path) == "rows = 1\nlr = 0.1\n"  # a list of lines is joined
    # nbformat also allows the source as one string; a cell with no source is an empty one
    assert parameters_source(_parameters_notebook(tmp_path, "rows = 2\n", "string.ipynb")) == "rows = 2\n"
    nosource = _raw_notebook(tmp_path, [{"cell_type": "code", "metadata": {"tags": ["parameters"]}}], "empty.ipynb")
    assert parameters_source(nosource) == "" and notebook_parameters(nosource) == {}


def test_parameters_keep_their_names_comments_and_annotated_types(tmp_path):
    from storylab.runner.params import notebook_parameters

    declared = notebook_parameters(_parameters_notebook(tmp_path, (
        "from typing import Literal\n"
        "rows = 3\n"
        "lr: float = 0.5          #X-axis scale\n"       # a comment whose text starts right after '#'
        "sizes: list[int] = [1]   # a list\n"
        "only: Literal['one'] = 'one'\n"
        "either: Literal[1, 2] | None = 1\n")))
    assert [p.name for p in declared.values()] == ["rows", "lr", "sizes", "only", "either"]
    assert declared["rows"].comment == "" and declared["lr"].comment == "X-axis scale"
    assert declared["lr"].types == (float, int) and declared["lr"].type_label() == "float | int"
    assert validate_parameters(declared, {"lr": 1}) == {"lr": 1}  # an int where a float is expected
    assert declared["sizes"].types == (list,) and declared["sizes"].choices is None
    assert declared["only"].choices == ("one",) and declared["only"].type_label() == '"one"'
    assert declared["either"].types == (int, type(None)) and declared["either"].choices == (1, 2)


def test_parameter_without_a_type_is_shown_as_any(toy_notebook):
    assert notebook_parameters(toy_notebook)["anything"].type_label() == "any"  # `storylab params` prints it


UNSUPPORTED = "; expected int, float, str, bool, list, dict, None, Literal[...] or a union of them"


@pytest.mark.parametrize("line, message", [
    ("rows = len([])", "parameter 'rows' (line 1) is not a plain literal"),
    ("p: Path = 1", "parameter 'p': unsupported annotation 'Path'" + UNSUPPORTED),
    ("p: int | Path = 1", "parameter 'p': unsupported annotation 'Path'" + UNSUPPORTED),
    ("p: Path | int = 1", "parameter 'p': unsupported annotation 'Path'" + UNSUPPORTED),
    ("p: 'int' = 1", "parameter 'p': unsupported annotation \"'int'\"" + UNSUPPORTED),  # a string annotation
    ("p: Literal[x] = 1", "parameter 'p': Literal[...] must list plain values, got 'Literal[x]'"),
])
def test_a_bad_parameters_cell_is_a_one_line_error_naming_the_notebook(tmp_path, line, message):
    path = _parameters_notebook(tmp_path, line, "bad.ipynb")
    assert _error(notebook_parameters, path) == f"notebook bad.ipynb: {message}"


def test_a_parameters_cell_that_is_not_python_names_the_line(tmp_path):
    message = _error(notebook_parameters, _parameters_notebook(tmp_path, "rows = 1\nx = (", "bad.ipynb"))
    assert message.startswith("notebook bad.ipynb: the parameters cell is not valid Python (line 2: ")  # then Python's words


def test_cli_values_split_at_the_first_equals_sign_and_words_stay_strings():
    from storylab.runner.params import parse_value

    assert parse_cli_overrides(["title=a=b"]) == {"title": "a=b"}
    assert parse_value("1.5e3") == 1500.0  # YAML 1.1 reads it as a string
    assert parse_value("1e5") == 100000.0
    assert parse_value("inf") == "inf" and parse_value("nan") == "nan"  # words, though float() reads them


def test_validation_errors_are_whole_one_line_messages():
    from storylab.runner.params import Parameter

    declared = {"lrate": Parameter("lrate", 0.1, (float, int), ""), "rows": Parameter("rows", 1, (int,), "")}
    assert _error(validate_parameters, declared, {"lr": 1}) == "notebook: unknown parameter 'lr'; did you mean 'lrate'?"
    assert _error(validate_parameters, declared, {"zzz": 1}) == "notebook: unknown parameter 'zzz'; expected one of: lrate, rows"
    assert _error(validate_parameters, declared, {"rows": "x"}) == "notebook: parameter 'rows' expects int, got 'x' (str)"
    # a value is shown whole up to 80 characters, else its first 77 and "..."
    assert _error(validate_parameters, declared, {"rows": "a" * 78}) == (
        f"notebook: parameter 'rows' expects int, got '{'a' * 78}' (str)")
    assert _error(validate_parameters, declared, {"rows": "a" * 79}) == (
        f"notebook: parameter 'rows' expects int, got '{'a' * 76}... (str)")


def test_parameter_files_must_hold_a_mapping(tmp_path):
    from storylab.runner.params import load_params_file

    path = tmp_path / "values.yaml"
    path.write_text("- 1\n- 2\n")
    where = f"-f {str(path)!r}"
    assert _error(load_params_file, path) == f"{where}: expected a mapping of parameter names to values, got a YAML list"
    path.write_text("")
    assert load_params_file(path) == {}  # an empty file sets nothing
    path.unlink()
    path.mkdir()
    assert _error(load_params_file, path) == (f"{where}: is a directory; expected a YAML file holding a mapping of "
                                              "parameter names to values")
