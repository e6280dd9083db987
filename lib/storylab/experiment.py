"""What every modelling notebook shares: the corpus, its tokens and floor, checkpoints, baselines.

    exp = load_experiment(corpus="stories", tokenizer="char", rows=1000)
    exp.train, exp.validation        # encoded splits (token ids + story offsets, memory-mapped)
    exp.floor_bits_per_char          # the corpus's entropy, when it is known
    work_dir = checkpoint_folder("hmm", [exp.spec, exp.tokenizer_name, n_states, ...])
    fitted = fit_baselines(exp, add_k=0.1, kn_orders=[2, 3, 5])   # unigram, bigram, neural bigram, KN
    records = model_records(exp, fitted)                          # one metrics.json row per model

Checkpoint folders are keyed by everything that shapes a fit AND by the library's code,
so re-running the same parameters after a crash resumes, while re-running them after the
library changed starts afresh instead of silently resuming a fit made by other code.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from storylab.cache import spec_hash
from storylab.corpora import Corpus, corpus_spec, load_corpus
from storylab.lm import LanguageModel, score
from storylab.metrics import LN2, model_record, peak_rss_mb
from storylab.paths import checkpoint_dir
from storylab.tokenizers import EncodedCorpus, EncodedSplit, encode_corpus, normalize_tokenizer_spec, tokenizer_label

BASELINE_FAMILIES = ("unigram", "bigram", "neural bigram", "kneser-ney")  # what fit_baselines fits, in its order

LIBRARY_DIR = Path(__file__).resolve().parent


@dataclass
class Experiment:
    """A corpus under one tokenizer: the splits models are fitted and scored on."""

    spec: dict[str, Any]  # the corpus spec, `rows` applied: what every model record names
    corpus: Corpus
    encoded: EncodedCorpus
    tokenizer_name: str  # the label with the vocabulary actually trained ("bpe:3091")
    tokenizer_asked: str  # the label as asked ("bpe:100000000")

    @property
    def tokenizer(self):
        return self.encoded.tokenizer

    @property
    def train(self) -> EncodedSplit:
        return self.encoded.train

    @property
    def validation(self) -> EncodedSplit:
        return self.encoded.validation

    @property
    def vocab_size(self) -> int:
        return self.encoded.vocab_size

    @property
    def eot_id(self) -> int:
        return self.encoded.eot_id

    @property
    def floor_bits_per_char(self) -> float | None:
        return self.corpus.floor_bits_per_char

    def describe(self) -> str:
        train, val = self.train, self.validation
        return (f"{train.n_stories:,} training stories ({train.n_tokens:,} tokens), {val.n_stories:,} validation "
                f"stories ({val.n_tokens:,} tokens, {val.n_chars:,} characters); tokenizer {self.tokenizer_name}, "
                f"vocabulary {self.vocab_size} (len(tokenizer)); floor "
                + ("unknown" if self.floor_bits_per_char is None else f"{self.floor_bits_per_char:.4f} bits/char"))


def load_experiment(corpus: str | dict, tokenizer: str | dict, rows: int | None = None) -> Experiment:
    """The corpus (first `rows` training stories) encoded with `tokenizer`, built or read from the cache."""
    spec = corpus_spec(corpus, rows=rows)
    corpus_data = load_corpus(spec)
    encoded = encode_corpus(corpus_data, tokenizer)
    asked = normalize_tokenizer_spec(tokenizer)
    return Experiment(spec, corpus_data, encoded, tokenizer_label(asked, encoded.tokenizer), tokenizer_label(asked))


# The library code that shapes each kind of fit (files, or folders of them, under lib/storylab/):
# an edit there starts a fit afresh; an edit elsewhere (a plot, a docstring in the runner) lets
# a crashed multi-hour fit resume. The HMM's checkpoint also refuses other training data by
# itself; the transformer's does not, so the code that makes its tokens counts too.
FIT_CODE = {
    "hmm": ("hmm.py", "hmm_engine.py", "hmm_blocks.py", "hmm_io.py", "token_blocks.py"),
    "transformer": ("transformer", "tokenizers.py", "corpora"),
}


@lru_cache(maxsize=None)
def code_version(kind: str | None = None) -> str:
    """A hash of the library source that shapes a `kind` of fit (`FIT_CODE`; the whole library
    for another kind): any change to that code gives a new value."""
    parts = [LIBRARY_DIR / part for part in FIT_CODE.get(kind, ("",))]
    paths = sorted({p for part in parts for p in ([part] if part.suffix == ".py" else part.rglob("*.py")) if p.is_file()})
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(LIBRARY_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def checkpoint_folder(kind: str, settings: Any) -> Path:
    """`outputs/checkpoints/<kind>/<hash of settings and code_version(kind)>/` for a resumable fit."""
    return checkpoint_dir(kind, spec_hash([settings, code_version(kind)]))


@dataclass
class Fitted:
    """A fitted language model, how long its fit took, and extra fields for its record.

    `peak_rss_mb` is the process's peak memory when the fit ended. A process cannot reset its
    peak, so a model fitted after a larger one in the same run shows that one's peak (02's
    baselines show the HMM's): compare memory across runs, not across rows of one run.
    """

    model: LanguageModel
    elapsed_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float = field(default_factory=peak_rss_mb)


def timed_fit(make: Callable[[], LanguageModel], train, **extra: Any) -> Fitted:
    """`make().fit(train)`, timed, with the peak memory when it ended."""
    started = time.perf_counter()
    model = make().fit(train)
    return Fitted(model, time.perf_counter() - started, extra)


def fit_baselines(exp: Experiment, add_k: float = 0.1, neural_bigram_steps: int = 300,
                  kn_orders: Sequence[int] = (2, 3, 5), seed: int = 0, device: str = "auto",
                  families: Sequence[str] = BASELINE_FAMILIES) -> list[Fitted]:
    """The baselines every model must beat, fitted on the experiment's training stories:
    unigram and bigram counts (add-k), the neural bigram, and Kneser–Ney n-grams of `kn_orders`.
    `families` fits only some of them (`BASELINE_FAMILIES`, in that order)."""
    from storylab.kneser_ney import KneserNey
    from storylab.ngram import BigramModel, NeuralBigram, UnigramModel

    families = check_baseline_families(families)
    V, eot = exp.vocab_size, exp.eot_id
    makers = {"unigram": [lambda: UnigramModel(V, eot, k=add_k)], "bigram": [lambda: BigramModel(V, eot, k=add_k)],
              "neural bigram": [lambda: NeuralBigram(V, eot, steps=neural_bigram_steps, seed=seed, device=device)],
              "kneser-ney": [lambda order=order: KneserNey(V, eot, order=order) for order in kn_orders]}
    return [timed_fit(make, exp.train) for family in BASELINE_FAMILIES if family in families for make in makers[family]]


def check_baseline_families(families: Sequence[str] | None, name: str = "families") -> tuple[str, ...]:
    """`families` as a tuple of some of `BASELINE_FAMILIES` (None: none); a string or an unknown family is an error."""
    if isinstance(families, str) or (families is not None and any(f not in BASELINE_FAMILIES for f in families)):
        shown = families if isinstance(families, str) else list(families)
        raise ValueError(f"{name}: expected a list of some of {list(BASELINE_FAMILIES)}, got {shown!r}")
    return tuple(families or ())


def model_records(exp: Experiment, fitted: Sequence[Fitted]) -> list[dict[str, Any]]:
    """Each model scored on the validation stories: its `metrics.json["models"]` row (see metrics.model_record)."""
    return [model_record(f.model, score(f.model, exp.validation, exp.floor_bits_per_char), tokenizer=exp.tokenizer_name,
                         corpus=exp.spec, elapsed_s=f.elapsed_s, tokenizer_asked=exp.tokenizer_asked,
                         **{"peak_rss_mb": f.peak_rss_mb, **f.extra})
            for f in fitted]


RESULT_COLUMNS = ["model", "params", "val_nats_per_token", "val_perplexity", "val_bits_per_char",
                  "floor_bits_per_char", "gap_to_floor_bits_per_char", "elapsed_s"]


def results_table(records: Sequence[dict[str, Any]]):
    """The models side by side, best bits/char first (a DataFrame for the notebook)."""
    import pandas as pd

    table = pd.DataFrame(list(records))
    columns = RESULT_COLUMNS + (["val_bits_per_char_note"] if table.get("val_bits_per_char_note") is not None
                                and table["val_bits_per_char_note"].notna().any() else [])
    order = pd.to_numeric(table["val_bits_per_char"], errors="coerce").sort_values(na_position="last").index
    return table.loc[order, columns].reset_index(drop=True)


def reference_lines(exp: Experiment, families: Sequence[str] = ("hmm", "bigram", "kneser-ney")) -> dict[str, float]:
    """Reference levels for this experiment's loss curves, in nats per validation token of THIS run.

    The corpus floor, and the best model of each family among runs with results on the same
    validation set and tokenizer (finished runs and hand runs, see `storylab.compare`). Each is
    converted from bits per character with this experiment's own token and character counts,
    so a reference from a run with another token count still sits at the right height.
    """
    from storylab.compare import best_per_family, model_table, validation_key

    per_token = exp.validation.n_chars * LN2 / exp.validation.n_tokens
    lines = {} if exp.floor_bits_per_char is None else {"floor": exp.floor_bits_per_char * per_token}
    table = model_table()
    if len(table):
        same = table[(table["corpus"].map(validation_key) == validation_key(exp.spec)) & (table["tokenizer"] == exp.tokenizer_name)]
        lines.update({label: bits * per_token for label, bits in best_per_family(same, tuple(families)).items()})
    return lines
