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


@pytest.fixture
def fresh_outputs(tmp_path, monkeypatch):
    """An empty outputs folder for one test (runs, cache and index start empty)."""
    folder = tmp_path / "outputs"
    monkeypatch.setenv("STORYLAB_OUTPUTS", str(folder))
    return folder
