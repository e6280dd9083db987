"""storylab: the shared library behind the numbered notebooks.

Notebooks do the science; this package does the work two notebooks share: corpora with
a known entropy floor, tokenizers, the HMM engine, n-gram baselines, transformer
training, interpretability, metrics, plots and the papermill runner.
"""

from storylab.paths import outputs_dir, run_dir

__version__ = "0.1.0"
__all__ = ["resolve_device", "outputs_dir", "run_dir", "__version__"]


def __getattr__(name: str):
    # torch is imported on first use of `resolve_device`, not by `import storylab`: the
    # command line (run, sweep, status, report) and each sweep child start ~4 s faster.
    if name == "resolve_device":
        from storylab.devices import resolve_device

        return resolve_device
    raise AttributeError(f"module 'storylab' has no attribute {name!r}")
