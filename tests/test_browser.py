"""Reports, sweep summaries and the dashboard in a real headless Chromium, offline.

Every plotly figure must actually draw (each `.plotly-graph-div` gets an `svg.main-svg`),
no page may log a JavaScript error, and no page may ask for anything outside `file://`.
A screenshot of each page is saved in the test's temporary folder.

Chromium is Debian's package at `$CHROMIUM` (default /usr/bin/chromium; `make test` passes
the Makefile's CHROMIUM and installs the package when missing: its target `browser`).
Playwright drives it; `playwright install` is never used.
"""

import os
from pathlib import Path

import nbformat
import pytest
import yaml

CHROMIUM = Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RENDER_TIMEOUT_MS = 30_000

TOY_PARAMETERS = '''rows = 3          # points on the line
title = "toy"     # figure title
'''
TOY_BODY = '''import json, os, pathlib
import plotly.graph_objects as go
from storylab import plots
plots.setup()
pathlib.Path(os.environ["STORYLAB_RUN_DIR"], "metrics.json").write_text(json.dumps({"val_bits_per_char": 2.0 / rows}))
go.Figure(go.Scatter(x=list(range(rows)), y=[r * r for r in range(rows)]), layout={"title": title})
'''


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; make test installs "
                    "it: Makefile target `browser`) to check reports in a real browser", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def toy_sweep(tmp_path_factory, isolated_outputs):
    """Two runs of a toy notebook with a figure, as a sweep: reports, a summary and index rows."""
    from storylab.runner.sweep_launch import run_sweep

    folder = tmp_path_factory.mktemp("toy")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(TOY_PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(TOY_BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "toy.ipynb"))
    sweep_file = folder / "browser_toy.yaml"
    sweep_file.write_text(yaml.safe_dump({"notebook": str(folder / "toy.ipynb"), "grid": {"rows": [3, 5]}}))
    outcome = run_sweep(sweep_file, jobs=2, progress=False)
    assert outcome.count("finished") == 2, outcome.state
    return outcome


def check_page(browser, path: Path, screenshot: Path) -> int:
    """Open `path` offline; fail on JS errors, outside requests or undrawn figures. → figures drawn."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, outside = [], []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda message: errors.append(f"console.{message.type}: {message.text}")
            if message.type == "error" else None)

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_files)
    try:
        page.goto(path.as_uri(), wait_until="load")
        n_figures = page.locator(".plotly-graph-div").count()
        if n_figures:
            page.wait_for_function(
                "n => document.querySelectorAll('.plotly-graph-div svg.main-svg').length >= n"
                " && Array.from(document.querySelectorAll('.plotly-graph-div'))"
                "      .every(div => div.querySelector('svg.main-svg'))",
                arg=n_figures, timeout=RENDER_TIMEOUT_MS)
        page.screenshot(path=str(screenshot), full_page=False)
    finally:
        page.close()
    assert not outside, f"{path.name} asked for outside resources: {outside[:3]}"
    assert not errors, f"{path.name}: {errors[:3]}"
    return n_figures


@pytest.mark.slow
def test_every_report_draws_its_figures_offline(browser, smoke_runs, toy_sweep, tmp_path):
    """One report of each notebook (the session's smoke runs) and of the toy notebook."""
    reports = {stem: result.folder / "report.html" for stem, result in smoke_runs.items()}
    reports["toy"] = toy_sweep.sweep.run_folder(toy_sweep.sweep.runs[0]) / "report.html"
    assert "01_tokenizers" in reports
    drawn = {}
    for stem, report in reports.items():
        assert report.exists(), f"{stem}: no report.html in {report.parent}"
        drawn[stem] = check_page(browser, report, tmp_path / f"{stem}.png")
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
    assert drawn["toy"] == 1 and drawn["01_tokenizers"] >= 1, drawn


@pytest.mark.slow
def test_sweep_summary_draws_its_plots(browser, toy_sweep, tmp_path):
    summary = toy_sweep.sweep.folder / "summary.html"
    assert check_page(browser, summary, tmp_path / "summary.png") >= 1


@pytest.mark.slow
def test_dashboard_lists_runs_and_filters_and_sorts(browser, smoke_runs, toy_sweep, tmp_path):
    from storylab.runner.dashboard import write_index

    index = write_index()
    check_page(browser, index, tmp_path / "index.png")
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    try:
        page.goto(index.as_uri())
        visible = "Array.from(document.querySelectorAll('#runs tbody tr')).filter(r => r.style.display !== 'none')"
        total = page.evaluate(f"{visible}.length")
        assert total >= len(smoke_runs) + 2
        page.select_option("#f-sweep", "browser_toy")
        assert page.evaluate(f"{visible}.map(r => r.dataset.notebook)") == ["toy", "toy"]
        page.click("th:text('val_bits_per_char')")  # ascending: rows=5 (0.4) before rows=3 (0.667)
        assert page.evaluate(f"{visible}.map(r => r.cells[1].textContent)") == ["rows=5", "rows=3"]
        page.select_option("#f-sweep", "")
        page.fill("#filter", "rows=3")
        assert page.evaluate(f"{visible}.length") == 1
        summary_link = page.locator("a[href$='sweeps/browser_toy/summary.html']")
        assert summary_link.count() == 1
        report_href = page.locator("#runs a", has_text="rows=3").get_attribute("href")
        assert (index.parent / report_href).exists()
    finally:
        page.close()


def test_chromium_is_installed_for_browser_tests():
    """Fails (never skips) on a machine without the browser the report tests need."""
    assert CHROMIUM.exists(), (f"{CHROMIUM} missing: run `apt-get install -y chromium` (make test installs it: "
                               "Makefile target `browser`), or point $CHROMIUM at a Chromium")


@pytest.mark.slow
def test_dashboard_shows_a_running_run_and_a_run_that_died(browser, fresh_outputs, tmp_path):
    """One live run in progress (owned by this process) and one whose process is gone."""
    import json

    from storylab.runner.dashboard import write_index
    from storylab.runner.process import this_process

    for name, owner in (("training", this_process()), ("killed", {**this_process(), "pid": 2 ** 22 + 12345})):
        folder = fresh_outputs / "runs" / "03_transformer" / f".tmp-{name}-0123abcd"
        folder.mkdir(parents=True)
        (folder / "status.json").write_text(json.dumps({"status": "running", "notebook": "03_transformer",
                                                        "name": name, "overrides": {"max_steps": 1000},
                                                        "started": "2026-06-01T10:00:00+00:00", **owner}))
        cell = nbformat.v4.new_code_cell("train()")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="step 300/1000: loss 1.234\n")]
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [cell]
        nbformat.write(notebook, str(folder / "notebook.ipynb"))
    index = write_index()
    screenshot = tmp_path / "index-running.png"
    check_page(browser, index, screenshot)
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    try:
        page.goto(index.as_uri())
        running = page.locator("#in-progress tbody tr")
        assert running.count() == 1 and running.first.is_visible()
        assert "training" in running.first.inner_text() and "step 300/1000: loss 1.234" in running.first.inner_text()
        died = page.locator("#runs tbody tr", has_text="killed")
        assert died.count() == 1 and "died: its process" in died.inner_text()
        assert page.locator("text=1 runs, 1 failed (1 died); 1 in progress").count() == 1
    finally:
        page.close()
    print(f"dashboard screenshot: {screenshot}")


def test_make_browser_stops_with_one_line_when_chromium_is_missing_and_cannot_be_installed(tmp_path):
    """`make test` provisions chromium (target `browser`); where packages cannot be installed
    (no apt-get here: PATH holds only make and id) it stops at once, naming the command to run."""
    import shutil
    import subprocess

    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("make", "id"):
        (tools / tool).symlink_to(shutil.which(tool))
    project = Path(__file__).resolve().parents[1]
    done = subprocess.run(["make", "-s", "-C", str(project), "browser", f"CHROMIUM={tmp_path / 'no-chromium'}"],
                          capture_output=True, text=True, env={"PATH": str(tools)}, timeout=60)
    assert done.returncode != 0
    assert done.stdout.strip().splitlines() == [
        f"error: the browser tests need {tmp_path / 'no-chromium'}; install it with: sudo apt-get install -y chromium"]


def test_make_browser_is_quiet_when_chromium_is_there(tmp_path):
    import subprocess

    present = tmp_path / "chromium"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    project = Path(__file__).resolve().parents[1]
    done = subprocess.run(["make", "-s", "-C", str(project), "browser", f"CHROMIUM={present}"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == ""
