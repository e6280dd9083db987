"""Corpus specs → `Corpus` (a `datasets.DatasetDict` with `train`/`validation` + metadata).

A spec is a short string or a small dict, so it fits in a notebook's parameters cell:

    "stories"                                   embedded story generator (the default)
    "addition"                                  lines like `13 + 29 = 42;`
    "mess3"                                     samples of the 3-state mess3 HMM
    "hub:roneneldan/TinyStories"                a Hugging Face hub dataset
    "path/to/stories.txt"                       a local file or `save_to_disk` folder
    {"source": "stories", "n_stories": 4000, "validation": 400, "seed": 0}

Options every source understands: `rows` (keep the first N training stories),
`validation` (a count, a fraction, or a split name for hub/file datasets) and
`vocab_filter` (keep only stories whose words all lie in the top-N training words).

Corpora are cached under `outputs/cache/corpus/<hash of the spec>/`; generated sources
record `floor_bits_per_char`, the exact entropy of their validation text.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from datasets import DatasetDict, load_from_disk

from storylab.cache import cached_dir, write_json_atomic
from storylab.corpora.addition import HeldOutPairs, held_out_pairs
from storylab.corpora.options import apply_common_options, normalize_spec
from storylab.corpora.sources import SOURCES

__all__ = ["Corpus", "corpus_spec", "load_corpus", "normalize_spec", "held_out_addition_pairs", "HeldOutPairs", "SOURCES"]


def corpus_spec(spec: str | dict, **options: Any) -> dict[str, Any]:
    """A spec with notebook-level options (e.g. `rows=1000`) applied; `None` options are ignored."""
    full = normalize_spec(spec)
    full.update({k: v for k, v in options.items() if v is not None})
    return normalize_spec(full)


@dataclass
class Corpus:
    """Texts in `dataset['train'|'validation']['text']` and what is known about them."""

    dataset: DatasetDict
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def floor_bits_per_char(self) -> float | None:
        return self.meta.get("floor_bits_per_char")

    @property
    def spec(self) -> dict[str, Any]:
        return self.meta["spec"]

    def texts(self, split: str = "train") -> list[str]:
        return list(self.dataset[split]["text"])

    def describe(self) -> dict[str, Any]:
        """Per-split statistics for a notebook table: stories, characters, words, distinct words."""
        rows = {}
        for split, data in self.dataset.items():
            words = [w for text in data["text"] for w in text.split()]
            rows[split] = {
                "stories": len(data),
                "chars": sum(len(t) for t in data["text"]),
                "words": len(words),
                "distinct_words": len(set(words)),
            }
        return rows

    def __repr__(self) -> str:
        sizes = {split: len(data) for split, data in self.dataset.items()}
        return f"Corpus(source={self.meta.get('source')!r}, splits={sizes}, floor_bits_per_char={self.floor_bits_per_char})"


def load_corpus(spec: str | dict | Corpus) -> Corpus:
    """Build (first use) or load (after) the corpus a spec describes."""
    if isinstance(spec, Corpus):
        return spec
    spec = normalize_spec(spec)
    folder = cached_dir("corpus", spec, lambda tmp: _build(spec, tmp))
    meta = json.loads((folder / "meta.json").read_text())
    return Corpus(dataset=load_from_disk(str(folder / "dataset")), meta=meta)


def held_out_addition_pairs(corpus: str | dict | Corpus) -> HeldOutPairs:
    """How many validation operand pairs of an addition corpus never occur in its training split.

    Works for any corpus of `A + B = C;` problems (the `addition` source, or a file of them);
    `str(result)` reads "865 of 865 validation operand pairs never seen in training (...)".
    """
    corpus = load_corpus(corpus)
    return held_out_pairs(corpus.texts("train"), corpus.texts("validation"))


@contextmanager
def _quiet_datasets():
    """No 'Saving the dataset' progress bars for a cache write the user did not ask for."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _build(spec: dict[str, Any], folder: Path) -> None:
    source = SOURCES[spec["source"]]
    dataset, meta = source(spec)
    dataset, meta = apply_common_options(dataset, meta, spec)
    if spec["source"] == "addition":  # counted on the final training split (after `rows`)
        meta["held_out_pairs"] = held_out_pairs(dataset["train"]["text"], dataset["validation"]["text"]).as_dict()
    meta = {
        "source": spec["source"],
        "n_stories": {split: len(data) for split, data in dataset.items()},
        "n_chars": {split: sum(len(t) for t in data["text"]) for split, data in dataset.items()},
        "floor_bits_per_char": meta.pop("floor_bits_per_char", None),
        **meta,
        "spec": spec,
    }
    with _quiet_datasets():
        dataset.save_to_disk(str(folder / "dataset"))
    write_json_atomic(folder / "meta.json", meta)
