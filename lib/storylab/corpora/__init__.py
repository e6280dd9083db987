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

Corpora are cached as memory-mapped Arrow under `outputs/cache/corpus/<hash of the spec
without rows>/`: `rows=N` is a view of the first N training stories of that one cache, so
trying several sizes builds the corpus once. Files are streamed into the cache in chunks,
and `Corpus.text_batches` reads a split back batch by batch, so memory stays bounded by a
batch, not by the corpus. Generated sources record `floor_bits_per_char`, the exact entropy
of their validation text.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Iterator

import datasets
from datasets import DatasetDict, load_from_disk

from storylab.cache import cached_dir, write_json_atomic
from storylab.checks import check_int
from storylab.corpora.addition import HeldOutPairs, held_out_pairs
from storylab.corpora.arrow import column_sum, count_chars, text_batches
from storylab.corpora.options import apply_vocab_filter, first_rows, normalize_spec
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

    def texts(self, split: str = "train", limit: int | None = None) -> list[str]:
        """The stories of a split as a list: all (for small corpora), or the first `limit`, read without
        the rest of the split (`iter_texts` and `text_batches` stream)."""
        return list(self.iter_texts(split, limit))

    def iter_texts(self, split: str = "train", limit: int | None = None) -> Iterator[str]:
        """The stories of a split (the first `limit` of them), one at a time, read batch by batch."""
        return chain.from_iterable(self.text_batches(split, limit=limit))

    def text_batches(self, split: str = "train", batch_size: int = 1000, limit: int | None = None) -> Iterator[list[str]]:
        """The stories of a split (the first `limit` of them), `batch_size` at a time, read from the
        memory-mapped cache."""
        data = self.dataset[split]
        if limit is not None:
            data = data.select(range(min(check_int("limit", limit), len(data))))  # a row range: no copy
        return text_batches(data, batch_size)

    def describe(self) -> dict[str, Any]:
        """Per-split statistics for a notebook table: stories, characters, words, distinct words."""
        rows = {}
        for split, data in self.dataset.items():
            chars, counts = 0, Counter()
            for batch in text_batches(data):
                chars += sum(len(t) for t in batch)
                counts.update(w for text in batch for w in text.split())
            rows[split] = {"stories": len(data), "chars": chars, "words": sum(counts.values()), "distinct_words": len(counts)}
        return rows

    def __repr__(self) -> str:
        sizes = {split: len(data) for split, data in self.dataset.items()}
        return f"Corpus(source={self.meta.get('source')!r}, splits={sizes}, floor_bits_per_char={self.floor_bits_per_char})"


def load_corpus(spec: str | dict | Corpus) -> Corpus:
    """Build (first use) or load (after) the corpus a spec describes."""
    if isinstance(spec, Corpus):
        return spec
    spec = normalize_spec(spec)
    full = {key: value for key, value in spec.items() if key != "rows"}
    folder = cached_dir("corpus", full, lambda tmp: _build(full, tmp))
    meta = json.loads((folder / "meta.json").read_text())
    dataset = load_from_disk(str(folder / "dataset"))
    if spec.get("rows"):
        dataset = first_rows(dataset, spec["rows"])
        meta.update(_split_sizes(dataset, spec["source"]))
        if meta.get("train_floor_bits_per_char") is not None:  # of the stories kept, not of the full split
            bits = column_sum(dataset["train"], "neg_log2_prob")
            meta["train_floor_bits_per_char"] = bits / meta["n_chars"]["train"]
    return Corpus(dataset=dataset, meta={**meta, "spec": spec})


def held_out_addition_pairs(corpus: str | dict | Corpus) -> HeldOutPairs:
    """How many validation operand pairs of an addition corpus never occur in its training split.

    Works for any corpus of `A + B = C;` problems (the `addition` source, or a file of them);
    `str(result)` reads "865 of 865 validation operand pairs never seen in training (...)".
    The `addition` source records the count in its metadata when it is built (and for each
    `rows` view): that is read; other corpora are counted here.
    """
    corpus = load_corpus(corpus)
    recorded = corpus.meta.get("held_out_pairs")
    return HeldOutPairs(**recorded) if recorded is not None else _held_out_pairs(corpus.dataset)


def _held_out_pairs(dataset: DatasetDict) -> HeldOutPairs:
    train, validation = (chain.from_iterable(text_batches(dataset[split])) for split in ("train", "validation"))
    return held_out_pairs(train, validation)


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
    scratch = folder / "scratch"  # Arrow files a source streams into; gone once the dataset is saved
    scratch.mkdir()
    try:
        with _quiet_datasets():
            dataset, meta = SOURCES[spec["source"]](spec, scratch)
            dataset, meta = apply_vocab_filter(dataset, meta, spec.get("vocab_filter"))
            meta = {
                "source": spec["source"],
                **_split_sizes(dataset, spec["source"]),
                "floor_bits_per_char": meta.pop("floor_bits_per_char", None),
                **meta,
                "spec": spec,
            }
            dataset.save_to_disk(str(folder / "dataset"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_json_atomic(folder / "meta.json", meta)


def _split_sizes(dataset: DatasetDict, source: str) -> dict[str, Any]:
    """Stories and characters per split; for addition, how many validation pairs training never saw."""
    sizes: dict[str, Any] = {"n_stories": {split: len(data) for split, data in dataset.items()},
                             "n_chars": {split: count_chars(data) for split, data in dataset.items()}}
    if source == "addition":  # recounted for a `rows` view: its training split is another one
        sizes["held_out_pairs"] = _held_out_pairs(dataset).as_dict()
    return sizes
