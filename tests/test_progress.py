"""Progress bars: one final line in a headless report, widgets only in a Jupyter frontend."""

import io

from storylab.progress import FinalLineBar, progress_bar


def test_headless_bar_prints_one_final_line(monkeypatch):
    monkeypatch.setenv("STORYLAB_HEADLESS", "1")
    out = io.StringIO()
    bar = progress_bar(total=40, desc="EM", unit="iter", file=out)
    assert isinstance(bar, FinalLineBar)
    for i in range(40):
        bar.update(1)
        bar.set_postfix(loss=f"{i:.1f}", refresh=False)
        assert out.getvalue() == ""  # nothing while the loop runs
    bar.close()
    lines = out.getvalue().strip("\r\n").split("\n")
    assert len(lines) == 1 and "40/40" in lines[0] and "loss=39.0" in lines[0]


def test_disabled_headless_bar_prints_nothing(monkeypatch):
    monkeypatch.setenv("STORYLAB_HEADLESS", "1")
    out = io.StringIO()
    for _ in progress_bar(range(3), disable=True, file=out):
        pass
    assert out.getvalue() == ""


def test_outside_jupyter_the_bar_is_plain_tqdm(monkeypatch):
    monkeypatch.delenv("STORYLAB_HEADLESS", raising=False)
    out = io.StringIO()
    bar = progress_bar(total=2, file=out)
    assert type(bar).__name__ == "tqdm" and not isinstance(bar, FinalLineBar)
    bar.close()
