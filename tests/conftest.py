"""Every test writes outputs into a temporary folder, never into the project's outputs/."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def isolated_outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outputs")
    previous = os.environ.get("STORYLAB_OUTPUTS")
    os.environ["STORYLAB_OUTPUTS"] = str(folder)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the network
    yield folder
    if previous is None:
        os.environ.pop("STORYLAB_OUTPUTS", None)
    else:
        os.environ["STORYLAB_OUTPUTS"] = previous


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The tests use tiny tensors: extra threads only add synchronisation, and on a busy
    2-core machine torch's threads spin-wait on each other (a 10x slowdown)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def fresh_outputs(tmp_path, monkeypatch):
    """An empty outputs folder for one test (runs, cache and index start empty)."""
    folder = tmp_path / "outputs"
    monkeypatch.setenv("STORYLAB_OUTPUTS", str(folder))
    return folder


@pytest.fixture(scope="session")
def smoke_runs(isolated_outputs):
    """Run params/smoke.yaml once per test session; {notebook stem: RunResult}."""
    from storylab.paths import PARAMS_DIR
    from storylab.runner.pipeline import run_pipeline

    results = run_pipeline(PARAMS_DIR / "smoke.yaml", progress=False)
    return {result.folder.parent.name: result for result in results}
