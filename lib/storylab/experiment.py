"""What every modelling notebook sets up first: the corpus, its tokens, its floor, its checkpoints.

    exp = load_experiment(corpus="stories", tokenizer="char", rows=1000)
    exp.train, exp.validation        # encoded splits (token ids + story offsets, memory-mapped)
    exp.floor_bits_per_char          # the corpus's entropy, when it is known
    work_dir = checkpoint_folder("hmm", [exp.spec, exp.tokenizer_name, n_states, ...])

Checkpoint folders are keyed by everything that shapes a fit AND by the library's code,
so re-running the same parameters after a crash resumes, while re-running them after the
library changed starts afresh instead of silently resuming a fit made by other code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from storylab.cache import spec_hash
from storylab.corpora import Corpus, corpus_spec, load_corpus
from storylab.metrics import tokenizer_label
from storylab.paths import checkpoint_dir
from storylab.tokenizers import EncodedCorpus, EncodedSplit, encode_corpus, normalize_tokenizer_spec

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


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the library's source: any change to the code that fits models gives a new value."""
    digest = hashlib.sha256()
    for path in sorted(LIBRARY_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(LIBRARY_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def checkpoint_folder(kind: str, settings: Any) -> Path:
    """`outputs/checkpoints/<kind>/<hash of settings and code_version()>/` for a resumable fit."""
    return checkpoint_dir(kind, spec_hash([settings, code_version()]))
