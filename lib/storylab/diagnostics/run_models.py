"""The language models of finished runs, with their tokenizers, ready for the diagnostics (notebook 06).

    found = models_from_runs()            # the latest 02_hmm and 03_transformer runs of one validation set
    found = models_from_runs(["runs/02_hmm/main", "03_transformer/main"], baselines=["kneser-ney"])
    found.models                          # RunModel: label, model, tokenizer, run_id, ...
    texts = found.validation_texts(200)   # the first 200 validation stories every model is scored on

A run is named by its folder (absolute, or relative to where the command started), its
run id as 05_compare lists it (`runs/02_hmm/main`, `interactive/03_transformer`),
`notebook/name` (`02_hmm/main`), or a notebook alone (`02_hmm`, `03_transformer`): the
latest run of that notebook with results on the validation set of the other runs named.
`None` means `["02_hmm", "03_transformer"]`: the newest 02_hmm run for which a
03_transformer run on the same validation set exists, and the newest such 03 run.
Every run must be on one validation set (`storylab.compare.validation_key`): only then
are per-character ledgers and minimal pairs comparable. Runs are read through
`storylab.runs` alone.

What each run gives:
- a 02_hmm run: its saved HMM (`metrics["hmm_path"]`), told its tokenizer's end-of-text
  id, and the baselines the run fitted beside it (unigram, bigram, neural bigram,
  Kneser–Ney), refitted from the same experiment with the run's own `add_k`,
  `neural_bigram_steps`, `kn_orders` and `seed` (seconds: counts and a small neural
  bigram; the run saves none of them). `baselines` keeps the families asked for.
- a 03_transformer run: its last checkpoint (`metrics["model_path"]`) through
  `transformer.load_lm`, with the tokenizer saved in the run.

Each model keeps the name its run's `metrics.json["models"]` records (`recorded_as`), so a
figure computed here can be joined to 05_compare's table on (`run_id`, `model`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from storylab.experiment import BASELINE_FAMILIES, check_baseline_families
from storylab.runs import Run, find_runs, read_run, resolve_run

HMM_NOTEBOOK, MODEL_NOTEBOOK = "02_hmm", "03_transformer"
NOTEBOOKS = (HMM_NOTEBOOK, MODEL_NOTEBOOK)


@dataclass
class RunModel:
    """One language model of a run, with the tokenizer its token ids belong to."""

    label: str  # unique among the models found ("HMM K=100", "kneser-ney 5", "transformer L2 d128 h4")
    model: Any  # a storylab.lm.LanguageModel
    tokenizer: Any
    run_id: str  # the run it comes from (`runs/02_hmm/main`)
    recorded_as: str  # its `model` name in that run's metrics.json
    tokenizer_name: str

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def n_ctx(self) -> int | None:
        """The context length in tokens of a model that has one (the transformer), else None."""
        return getattr(self.model, "n_ctx", None)


@dataclass
class RunModels:
    """The models found, the runs they came from, and their shared validation set."""

    models: list[RunModel]
    runs: list[Run]
    corpus_spec: dict[str, Any]  # the validation set: the first run's corpus spec
    _texts: list[str] | None = field(default=None, repr=False)

    def __getitem__(self, label: str) -> RunModel:
        for found in self.models:
            if found.label == label:
                return found
        raise KeyError(f"no model {label!r}; have {[m.label for m in self.models]}")

    @property
    def labels(self) -> list[str]:
        return [m.label for m in self.models]

    @property
    def is_stories(self) -> bool:
        """Whether the validation text comes from the story generator (so it has a true ledger)."""
        return self.corpus_spec.get("source") == "stories"

    def validation_texts(self, n: int | None = None) -> list[str]:
        """The first `n` validation stories (all when None)."""
        if self._texts is None:
            from storylab.corpora import load_corpus

            self._texts = load_corpus(self.corpus_spec).texts("validation")
        return list(self._texts[:n])

    def compared_pair(self, labels: Sequence[str] | None = None) -> list[str]:
        """Two model labels to set against each other: `labels` checked, or by default the transformer
        and the HMM (the workbook's question), else the first two models."""
        if labels is not None:
            labels = list(labels)
            if len(labels) != 2 or labels[0] == labels[1] or not set(labels) <= set(self.labels):
                raise ValueError(f"hard_models: expected two different labels among {self.labels}, got {labels!r}")
            return labels
        if len(self.models) < 2:
            raise ValueError(f"runs: hard cases need two models, found only {self.labels}")
        by_family = {m.family: m.label for m in reversed(self.models)}  # the first model of each family
        if "transformer" in by_family and "hmm" in by_family:
            return [by_family["transformer"], by_family["hmm"]]
        return self.labels[:2]

    def contexts(self, unit: str = "tokens", texts: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
        """{label: (always seen, at most seen)} back from a token, for models with a context window:
        scored with windows of n_ctx tokens moved by `stride`, a token sees at least n_ctx − stride
        tokens before it and never more than n_ctx. `unit="chars"` converts with each tokenizer's
        characters per token on `texts` (the validation texts by default)."""
        if unit not in ("tokens", "chars"):
            raise ValueError(f"unit: expected 'tokens' or 'chars', got {unit!r}")
        from storylab.tokenizers import describe_tokenizer

        out = {}
        for m in self.models:
            if m.n_ctx is None:
                continue
            stride = getattr(m.model, "stride", None) or m.n_ctx
            scale = (describe_tokenizer(m.tokenizer, list(texts or self.validation_texts(200)))["chars_per_token"]
                     if unit == "chars" else 1.0)
            out[m.label] = ((m.n_ctx - stride) * scale, m.n_ctx * scale)
        return out

    def table(self) -> pd.DataFrame:
        """One row per model: what it is and where it comes from."""
        return pd.DataFrame([{"label": m.label, "family": m.family, "tokenizer": m.tokenizer_name,
                              "params": int(m.model.n_params), "n_ctx": m.n_ctx, "run_id": m.run_id,
                              "recorded_as": m.recorded_as} for m in self.models]).astype({"n_ctx": "Int64"})


def models_from_runs(runs: Sequence[str | Path] | None = None, baselines: Sequence[str] | None = BASELINE_FAMILIES,
                     device: str = "auto") -> RunModels:
    """The models of `runs` (see the module docstring); `baselines`: which baseline families
    of each 02_hmm run to refit (None or [] : none)."""
    baselines = check_baseline_families(baselines, "baselines")
    chosen = resolve_runs(runs)
    from storylab.interp.run_inputs import run_corpus_spec

    models: list[RunModel] = []
    for run in chosen:
        models.extend(_hmm_models(run, baselines, device) if run.notebook == HMM_NOTEBOOK else [_transformer(run, device)])
    _make_labels_unique(models)
    return RunModels(models, chosen, run_corpus_spec(chosen[0]))


# --- which runs -------------------------------------------------------------------------------------

def resolve_runs(runs: Sequence[str | Path] | None = None) -> list[Run]:
    """The runs named (see the module docstring), checked: readable, with results, of 02_hmm or
    03_transformer, all on one validation set. Notebook names pick that notebook's latest run."""
    references = list(NOTEBOOKS) if runs is None else runs
    if isinstance(references, (str, Path)) or not len(references) or not all(isinstance(r, (str, Path)) for r in references):
        raise ValueError(f"runs: expected a list of run folders, run ids (runs/02_hmm/main), notebook/name "
                         f"(02_hmm/main) or notebook names ({', '.join(NOTEBOOKS)}), got {runs!r}")
    named = {i: _named_run(str(r)) for i, r in enumerate(references) if str(r) not in NOTEBOOKS}
    keys = {_key(run) for run in named.values()}
    if len(keys) > 1:
        raise ValueError("runs: not all on one validation set: "
                         + "; ".join(f"{r.run_id} on {_corpus(r)}" for r in named.values()))
    latest_at = [i for i, r in enumerate(references) if str(r) in NOTEBOOKS]
    latest = dict(zip(latest_at, _latest_runs([str(references[i]) for i in latest_at], keys.pop() if keys else None)))
    return [{**named, **latest}[i] for i in range(len(references))]


def _named_run(reference: str) -> Run:
    from storylab.paths import outputs_dir, user_path

    for folder in (user_path(reference), outputs_dir() / reference):
        if (folder / "status.json").is_file():
            return _checked(read_run(folder), reference)
    notebook, _, name = reference.partition("/")
    if notebook in NOTEBOOKS and name and "/" not in name:
        try:
            run = resolve_run(name, notebook)
        except ValueError as error:
            raise ValueError(f"runs: {reference!r}: {error}") from None
        return _checked(run, reference)
    raise ValueError(f"runs: {reference!r} is not a run folder, a run id (runs/02_hmm/main), notebook/name "
                     f"(02_hmm/main) or one of {', '.join(NOTEBOOKS)}")


def _checked(run: Run, reference: str) -> Run:
    if run.problem:
        raise ValueError(f"runs: {reference!r} cannot be read: {run.problem}")
    if run.notebook not in NOTEBOOKS:
        raise ValueError(f"runs: {reference!r} is a {run.notebook} run; expected {' or '.join(NOTEBOOKS)} runs")
    if not run.has_results:
        raise ValueError(f"runs: {reference!r} has no results (its state is {run.state})")
    return run


def _latest_runs(notebooks: list[str], key: str | None) -> list[Run]:
    """For each notebook, its newest run with results on validation set `key`; with no `key`, the
    newest run of the first notebook for which every other notebook has a run on its validation set."""
    if not notebooks:
        return []
    candidates = {nb: [r for r in reversed(find_runs(nb, finished_only=True)) if r.notebook == nb and not r.problem]
                  for nb in notebooks}
    for nb, found in candidates.items():
        if not found:
            raise ValueError(f"runs: no {nb} run with results under the outputs folder; run it first "
                             f"(python -m storylab run {nb}) or name the runs")
    keys = [key] if key is not None else [_key(r) for r in candidates[notebooks[0]]]
    for wanted in keys:
        chosen = [next((r for r in candidates[nb] if _key(r) == wanted), None) for nb in notebooks]
        if all(chosen):
            return chosen
    seen = "; ".join(f"{nb}: " + ", ".join(sorted({_corpus(r) for r in runs})) for nb, runs in candidates.items())
    raise ValueError(f"runs: no runs of {', '.join(notebooks)} on one validation set"
                     + (f" with the runs named ({key})" if key else "") + f" (found {seen}); name the runs")


def _key(run: Run) -> str:
    from storylab.compare import validation_key
    from storylab.interp.run_inputs import run_corpus_spec

    return validation_key(run_corpus_spec(run))


def _corpus(run: Run) -> str:
    from storylab.compare import corpus_label
    from storylab.interp.run_inputs import run_corpus_spec

    return corpus_label(run_corpus_spec(run))


# --- loading ----------------------------------------------------------------------------------------

def _hmm_models(run: Run, baselines: tuple[str, ...], device: str) -> list[RunModel]:
    from storylab.experiment import fit_baselines, load_experiment
    from storylab.hmm import CategoricalHMM
    from storylab.interp.run_inputs import run_corpus_spec

    if "tokenizer" not in run.params:
        raise ValueError(f"runs: {run.run_id} records no 'tokenizer' parameter in its params.yaml")
    hmm = CategoricalHMM.load(run.artifact("hmm_path"), device=device)
    exp = load_experiment(run_corpus_spec(run), run.params["tokenizer"])
    if hmm.vocab_size != exp.vocab_size:
        raise ValueError(f"runs: {run.run_id}'s HMM has {hmm.vocab_size} tokens, its tokenizer "
                         f"{exp.tokenizer_name} {exp.vocab_size}: the tokenizer was rebuilt differently")
    hmm.eot_id = exp.eot_id
    found = [RunModel(hmm.label, hmm, exp.tokenizer, run.run_id, hmm.label, exp.tokenizer_name)]
    if baselines:
        params = run.params
        fitted = fit_baselines(exp, add_k=params.get("add_k", 0.1), neural_bigram_steps=params.get("neural_bigram_steps", 300),
                               kn_orders=params.get("kn_orders", (2, 3, 5)), seed=params.get("seed", 0), device=device,
                               families=baselines)  # only the families asked for: the neural bigram trains
        found += [RunModel(f.model.label, f.model, exp.tokenizer, run.run_id, f.model.label, exp.tokenizer_name)
                  for f in fitted]
    return found


def _transformer(run: Run, device: str) -> RunModel:
    from storylab.transformer import load_lm

    lm, tokenizer = load_lm(run.artifact("model_path"), device=device)
    tokenizer_name = str(run.metrics.get("tokenizer") or run.params.get("tokenizer", "?"))
    return RunModel(lm.label, lm, tokenizer, run.run_id, lm.label, tokenizer_name)


def _make_labels_unique(models: list[RunModel]) -> None:
    """Two models of one name (two runs of the same shape) get their run's id after it."""
    counts: dict[str, int] = {}
    for m in models:
        counts[m.label] = counts.get(m.label, 0) + 1
    for m in models:
        if counts[m.label] > 1:
            m.label = f"{m.label} ({m.run_id})"
