"""Files and peer-library conversions for `CategoricalHMM`: one safetensors file, and pomegranate.

A saved HMM is a folder holding one file, `hmm.safetensors`: the tables (start, trans,
emit as probabilities in the model's dtype, float32 or float64, plus `token_blocks` as
int64 for a blocked model) and, in
the safetensors header's `metadata`, the format name and a JSON document with the sizes,
settings, fit history and iteration. One file is one atomic rename, so a checkpoint
killed at any moment is either the previous iteration's or the new one, whole: tables
and history can never come from different iterations.

Loading checks the format, dtypes, shapes, that every distribution is a probability
vector and that the header agrees with the tables, so a truncated, foreign or hand-edited
file is a one-line error naming the file rather than a model that misbehaves later.
Folders of the old two-file format (`hmm.safetensors` + `hmm.json`, renamed one after the
other) still load, flagged `legacy`: a kill between the two renames could pair new
tables with an old history, which cannot be detected, so they are not resumed from.
Nothing here unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from storylab.cache import atomic_path

WEIGHTS_FILE = "hmm.safetensors"
LEGACY_META_FILE = "hmm.json"
FORMAT = "storylab.CategoricalHMM/2"
LEGACY_FORMAT = "storylab.CategoricalHMM/1"
PROBABILITY_TABLES = ("start", "trans", "emit")
PROBABILITY_DTYPES = {"float32": torch.float32, "float64": torch.float64}  # a model's `dtype`: its tables and E-step


def probability_dtype(name: str, where: str = "dtype") -> torch.dtype:
    """The torch dtype of a model's `dtype` setting, or a one-line ValueError."""
    if name not in PROBABILITY_DTYPES:
        raise ValueError(f"{where}: expected one of {tuple(PROBABILITY_DTYPES)}, got {name!r}")
    return PROBABILITY_DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def save_params(folder: Path, tables: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write `tables` and `meta` into `folder/hmm.safetensors`, renamed into place in one step."""
    folder = Path(folder)
    tensors = {name: t.detach().cpu().contiguous() for name, t in tables.items()}
    header = {"format": FORMAT, "meta": json.dumps(meta)}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    # a format-1 hmm.json left beside the new file would only mislead a reader
    (folder / LEGACY_META_FILE).unlink(missing_ok=True)
    return folder


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary file a process killed in the middle of `save_params` left behind."""
    for stale in Path(folder).glob(f".tmp-{WEIGHTS_FILE}-*"):
        stale.unlink(missing_ok=True)


def load_params(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    """Read and check a saved HMM folder: `(tables, meta, legacy)`."""
    folder = Path(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ValueError(f"path: {folder} is not a saved CategoricalHMM (expected {WEIGHTS_FILE} inside)")
    try:
        with safe_open(str(weights), framework="pt") as file:
            header = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ValueError(f"path: {weights} is truncated or corrupted, expected a whole safetensors file written by CategoricalHMM.save ({error})") from error
    legacy = header.get("format") != FORMAT
    meta = _legacy_meta(folder, weights) if legacy else _header_meta(weights, header)
    expected = probability_dtype(meta.get("dtype", "float32"), f"path: {weights} header's dtype")
    for name in PROBABILITY_TABLES + ("token_blocks",):
        dtype = torch.int64 if name == "token_blocks" else expected
        if name in tensors and tensors[name].dtype != dtype:
            raise ValueError(f"path: {weights} holds {name} as {dtype_name(tensors[name].dtype)}, expected {dtype_name(dtype)}")
    check_params(tensors.get("start"), tensors.get("trans"), tensors.get("emit"), where=f"path: {weights}")
    n_states, vocab_size = tensors["emit"].shape
    if (meta.get("n_states"), meta.get("vocab_size")) != (n_states, vocab_size):
        raise ValueError(
            f"path: {weights} holds {n_states} states x {vocab_size} tokens but its header says "
            f"{meta.get('n_states')} x {meta.get('vocab_size')}"
        )
    return tensors, meta, legacy


def _header_meta(weights: Path, header: dict[str, str]) -> dict[str, Any]:
    try:
        meta = json.loads(header.get("meta", ""))
    except json.JSONDecodeError as error:
        raise ValueError(f"path: {weights} has a corrupted header: its 'meta' is not valid JSON ({error})") from error
    if not isinstance(meta, dict):
        raise ValueError(f"path: {weights} has a corrupted header: expected a JSON object in 'meta'")
    return meta


def _legacy_meta(folder: Path, weights: Path) -> dict[str, Any]:
    meta_path = folder / LEGACY_META_FILE
    if not meta_path.is_file():
        raise ValueError(f"path: {weights} is not a saved CategoricalHMM (no {FORMAT} header, and no {LEGACY_META_FILE} beside it)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"path: {meta_path} is not valid JSON ({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != LEGACY_FORMAT:
        raise ValueError(f"path: {meta_path} is not a {LEGACY_FORMAT} file")
    return meta


def check_params(start, trans, emit, where: str = "from_params", atol: float = 1e-4) -> None:
    """Shapes (K,), (K,K), (K,V), finite, non-negative, each distribution summing to 1."""
    for name, value in (("start", start), ("trans", trans), ("emit", emit)):
        if value is None:
            raise ValueError(f"{where}: missing table {name!r}")
    if start.ndim != 1 or trans.ndim != 2 or emit.ndim != 2:
        raise ValueError(f"{where}: expected start (K,), trans (K,K), emit (K,V); got shapes {tuple(start.shape)}, {tuple(trans.shape)}, {tuple(emit.shape)}")
    n_states = start.shape[0]
    if trans.shape != (n_states, n_states) or emit.shape[0] != n_states or emit.shape[1] < 1:
        raise ValueError(f"{where}: expected start (K,), trans (K,K), emit (K,V); got shapes {tuple(start.shape)}, {tuple(trans.shape)}, {tuple(emit.shape)}")
    for name, value in (("start", start), ("trans", trans), ("emit", emit)):
        value = torch.as_tensor(value)
        if not torch.isfinite(value).all() or (value < 0).any():
            raise ValueError(f"{where}: {name} must hold finite non-negative probabilities")
        sums = value.sum(dim=-1).double()  # no float64 copy of a K×K table (2 GB at K=16,384); float32 sums are close enough for atol
        if not torch.allclose(sums, torch.ones_like(sums), atol=atol):
            worst = float((sums - 1).abs().max())
            raise ValueError(f"{where}: every row of {name} must sum to 1 (off by up to {worst:.3g})")


def to_pomegranate(start: torch.Tensor, trans: torch.Tensor, emit: torch.Tensor):
    """A pomegranate 1.x `DenseHMM` with one `Categorical` per state over the full vocabulary.

    `ends` are set to probability 1 ("no end state"), so pomegranate's `log_probability`
    equals `CategoricalHMM.log_likelihood`. Sampling in pomegranate needs proper end
    probabilities; sample with storylab instead.
    """
    from pomegranate.distributions import Categorical
    from pomegranate.hmm import DenseHMM

    emit = emit.detach().cpu().float()
    states = [Categorical(probs=emit[k : k + 1].clone(), n_categories=emit.shape[1]) for k in range(emit.shape[0])]
    return DenseHMM(
        states,
        edges=trans.detach().cpu().float().clone(),
        starts=start.detach().cpu().float().clone(),
        ends=torch.ones(emit.shape[0]),
    )


def from_pomegranate(model, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(start, trans, emit)` probabilities from a pomegranate `DenseHMM` of `Categorical`s.

    Emission tables narrower than `vocab_size` (pomegranate sizes them by the largest id
    it saw) are padded with zeros; transition rows are renormalised without the end
    state, since CategoricalHMM has none.
    """
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ValueError(f"vocab_size: expected a positive int, got {vocab_size!r}")
    if getattr(model, "edges", None) is None or getattr(model, "starts", None) is None or not model.distributions:
        raise ValueError("model: expected an initialised (fitted or fully specified) pomegranate DenseHMM")
    start = torch.exp(model.starts.detach().double().cpu())
    trans = torch.exp(model.edges.detach().double().cpu())
    rows = []
    for k, dist in enumerate(model.distributions):
        probs = getattr(dist, "probs", None)
        if probs is None or probs.ndim != 2 or probs.shape[0] != 1:
            raise ValueError(f"model: state {k} is not a one-feature pomegranate Categorical")
        row = probs.detach().double().cpu()[0]
        if row.shape[0] > vocab_size:
            raise ValueError(f"vocab_size: {vocab_size} is smaller than state {k}'s emission table ({row.shape[0]} tokens)")
        rows.append(torch.nn.functional.pad(row, (0, vocab_size - row.shape[0])))
    emit = torch.stack(rows)
    return start / start.sum(), trans / trans.sum(dim=1, keepdim=True), emit / emit.sum(dim=1, keepdim=True)
