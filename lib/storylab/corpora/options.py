"""Spec normalisation and the options every corpus source shares (rows, validation, vocab_filter).

`vocab_filter` is part of what a cached corpus is; `rows` is not: `rows=N` is a view of the
first N training stories of the full corpus's cache, so every `rows` value shares one build.

An `hmm` spec holds the options of its own `kind` only: `epsilon` and `emission` are filled
in for `cyclic`, `x` and `a` for `mess3` (`HMM_KIND_DEFAULTS`), so a random process's spec —
its cache key, its validation set, 05's tables — carries no cyclic or mess3 knob. Specs
recorded before (every `hmm` spec with all four filled in) read the same after
`canonical_hmm_spec`, which `normalize_spec` and `compare.validation_key` apply.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from datasets import Dataset, DatasetDict

from storylab.corpora.addition import check_addition_spec
from storylab.corpora.arrow import text_batches

# Defaults per source: what a bare name like "stories" means.
SOURCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "stories": {"n_stories": 4000, "validation": 400, "seed": 0},
    "addition": {"n_problems": 20000, "validation": 2000, "min_operand": 0, "max_operand": 99, "seed": 0,
                 "validation_pairs": 0.1},  # the share of operand pairs held out for validation
    "hmm": {"kind": "random", "n_states": 8, "vocab_size": 16, "concentration": 0.5, "seed": 0,
            "n_sequences": 2000, "validation": 200, "length": 128, "cot_every": None},
    "hub": {"split": "train", "validation": "validation"},
    "file": {"separator": "eot", "validation": "validation"},  # a split of that name, else 5%
}
COMMON_OPTIONS = {"source", "rows", "validation", "vocab_filter"}
SOURCE_OPTIONS: dict[str, set[str]] = {
    "stories": {"n_stories", "seed"},
    "addition": {"n_problems", "min_operand", "max_operand", "seed", "validation_pairs"},
    "hmm": {"kind", "n_states", "vocab_size", "concentration", "seed", "path", "n_sequences", "length", "x", "a",
            "epsilon", "emission", "cot_every"},
    "hub": {"name", "config", "split", "text_column"},
    "file": {"path", "separator", "text_column", "_mtime_size"},
}
SHORTHANDS = {"mess3": {"source": "hmm", "kind": "mess3", "vocab_size": 3, "n_states": 3}}
# options one kind of `hmm` process reads, with their defaults: filled in for that kind only
HMM_KIND_DEFAULTS: dict[str, dict[str, Any]] = {"cyclic": {"epsilon": 0.05, "emission": "stochastic"},
                                                "mess3": {"x": 0.15, "a": 0.6}}


def normalize_spec(spec: str | dict[str, Any]) -> dict[str, Any]:
    """A full, validated spec dict (defaults filled in) from a string or partial dict."""
    if isinstance(spec, str):
        spec = _parse_spec_string(spec)
    elif isinstance(spec, dict):
        spec = dict(spec)
        if "source" not in spec:
            raise ValueError(f"corpus: a dict spec needs a 'source' (one of {sorted(SOURCE_DEFAULTS)}), got keys {sorted(spec)}")
        if spec["source"] in SHORTHANDS:
            spec = {**SHORTHANDS[spec.pop("source")], **spec}
    else:
        raise ValueError(f"corpus: expected a name, a path or a dict spec, got {type(spec).__name__} {spec!r}")
    source = spec["source"]
    if source not in SOURCE_DEFAULTS:
        raise ValueError(f"corpus: unknown source {source!r}; expected one of {sorted(SOURCE_DEFAULTS)}")
    unknown = set(spec) - COMMON_OPTIONS - SOURCE_OPTIONS[source]
    if unknown:
        allowed = sorted(COMMON_OPTIONS | SOURCE_OPTIONS[source])
        raise ValueError(f"corpus: unknown option(s) {sorted(unknown)} for source {source!r}; expected some of {allowed}")
    full = {**SOURCE_DEFAULTS[source], **spec}
    if source == "hmm":
        full = canonical_hmm_spec(full, strict=True)
    if source == "file":
        path = Path(full.get("path", "")).expanduser()
        if not path.exists():
            raise ValueError(f"corpus: file {str(path)!r} does not exist")
        full["path"] = str(path.resolve())
        stat = path.stat()
        full["_mtime_size"] = [int(stat.st_mtime), stat.st_size]  # a changed file is a new cache entry
    if source == "addition":
        check_addition_spec(full)
    if source == "hub" and not full.get("name"):
        raise ValueError("corpus: a hub spec needs a dataset 'name', e.g. 'hub:roneneldan/TinyStories'")
    for key in ("rows", "vocab_filter"):
        if full.get(key) is not None and (not isinstance(full[key], int) or full[key] < 1):
            raise ValueError(f"corpus: option {key!r} must be a positive integer or null, got {full[key]!r}")
    return full


def canonical_hmm_spec(spec: dict[str, Any], strict: bool = False) -> dict[str, Any]:
    """An `hmm` spec with its kind's own options filled in (`HMM_KIND_DEFAULTS`) and another kind's
    left out where they hold their old default (every spec recorded before they were per kind does).

    `strict`: another kind's option set to anything else is a one-line error (a user's spec); else
    it is kept (a recorded spec is read as it was written). Other sources are returned unchanged.
    """
    if spec.get("source", "hmm") != "hmm":
        return spec
    kind, out = spec.get("kind", SOURCE_DEFAULTS["hmm"]["kind"]), dict(spec)
    for owner, defaults in HMM_KIND_DEFAULTS.items():
        for name, default in defaults.items():
            if owner == kind:
                out.setdefault(name, default)
            elif name in out and out[name] in (default, None):
                del out[name]
            elif name in out and strict:
                raise ValueError(f"corpus: hmm option {name!r} is read only by kind {owner!r}; "
                                 f"leave it out for kind {kind!r} (got {out[name]!r})")
    return out


def _parse_spec_string(text: str) -> dict[str, Any]:
    if text in SHORTHANDS:
        return dict(SHORTHANDS[text])
    if text in SOURCE_DEFAULTS and text not in ("hub", "file"):
        return {"source": text}
    if text.startswith("hub:"):
        return {"source": "hub", "name": text[4:]}
    if Path(text).expanduser().exists():
        return {"source": "file", "path": text}
    raise ValueError(
        f"corpus: {text!r} is not a known corpus ('stories', 'addition', 'mess3', 'hub:NAME') nor an existing file"
    )


def validation_count(n_total: int, validation: int | float) -> int:
    """How many of the LAST stories are held out as validation: a count, or a fraction of the total."""
    n_val = round(n_total * validation) if isinstance(validation, float) and validation < 1 else int(validation)
    if not 0 < n_val < n_total:
        raise ValueError(f"corpus: validation={validation!r} leaves no training or no validation stories out of {n_total}")
    return n_val


WORD = re.compile(r"[A-Za-z']+")


def top_words(texts: Iterable[str], n: int) -> set[str]:
    counts = Counter(w.lower() for text in texts for w in WORD.findall(text))
    return {w for w, _ in counts.most_common(n)}


def apply_vocab_filter(dataset: DatasetDict, meta: dict[str, Any], vocab_filter: int | None) -> tuple[DatasetDict, dict]:
    """Keep only stories whose words all lie among the top-`vocab_filter` words of the training split."""
    if not vocab_filter:
        return dataset, meta
    keep = top_words((t for batch in text_batches(dataset["train"]) for t in batch), vocab_filter)

    def covered(texts: list[str]) -> list[bool]:
        return [all(w.lower() in keep for w in WORD.findall(text)) for text in texts]

    before = {split: len(data) for split, data in dataset.items()}
    dataset = DatasetDict({split: data.filter(covered, batched=True, input_columns=["text"])
                           for split, data in dataset.items()})
    meta["vocab_filter_kept"] = {split: f"{len(data)}/{before[split]}" for split, data in dataset.items()}
    # A filtered sample is no longer the generator's distribution: its entropy is unknown.
    meta["floor_bits_per_char"] = None
    for split, data in dataset.items():
        if len(data) == 0:
            raise ValueError(f"corpus: vocab_filter={vocab_filter} keeps no {split} stories; use a larger vocabulary")
    return dataset, meta


def first_rows(dataset: DatasetDict, rows: int | None) -> DatasetDict:
    """The first `rows` training stories (all when None): a row range of the memory-mapped split, no copy."""
    if not rows:
        return dataset
    train = dataset["train"]
    return DatasetDict({**dataset, "train": train.select(range(min(rows, len(train))))})


def texts_to_dataset(train: list[str], validation: list[str], **columns: tuple[list, list]) -> DatasetDict:
    """A DatasetDict from text lists plus optional extra columns given as (train, validation) pairs."""
    def split(index: int, texts: list[str]) -> Dataset:
        return Dataset.from_dict({"text": texts, **{name: pair[index] for name, pair in columns.items()}})

    return DatasetDict({"train": split(0, train), "validation": split(1, validation)})
