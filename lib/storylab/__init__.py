"""storylab: the shared library behind the numbered notebooks.

Notebooks do the science; this package does the work two notebooks share: corpora with
a known entropy floor, tokenizers, the HMM engine, n-gram baselines, transformer
training, interpretability, metrics, plots and the papermill runner.
"""

from storylab.devices import resolve_device
from storylab.paths import outputs_dir, run_dir

__version__ = "0.1.0"
__all__ = ["resolve_device", "outputs_dir", "run_dir", "__version__"]
