"""Files and peer-library conversions for `CategoricalHMM`: safetensors + JSON, and pomegranate.

A saved HMM is a folder holding `hmm.safetensors` (start, trans, emit as float32
probabilities) and `hmm.json` (sizes, settings, fit history, iteration). Loading checks
shapes and that every distribution is a probability vector, so a truncated, foreign or
hand-edited file is a one-line error rather than a model that silently misbehaves.
Nothing here unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from storylab.cache import atomic_path, write_json_atomic

WEIGHTS_FILE = "hmm.safetensors"
META_FILE = "hmm.json"
FORMAT = "storylab.CategoricalHMM/1"


def save_params(folder: Path, start: torch.Tensor, trans: torch.Tensor, emit: torch.Tensor, meta: dict[str, Any]) -> Path:
    """Write the three tables and `meta` into `folder`, each file renamed into place."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in (("start", start), ("trans", trans), ("emit", emit))}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(folder / META_FILE, {"format": FORMAT, **meta})
    return folder


def load_params(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and check a saved HMM folder: `({"start", "trans", "emit"}, meta)`."""
    folder = Path(folder)
    weights, meta_path = folder / WEIGHTS_FILE, folder / META_FILE
    if not weights.is_file() or not meta_path.is_file():
        raise ValueError(f"path: {folder} is not a saved CategoricalHMM (expected {WEIGHTS_FILE} and {META_FILE} inside)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"path: {meta_path} is not valid JSON ({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"path: {meta_path} is not a {FORMAT} file")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"path: {weights} is corrupted or not a safetensors file ({error})") from error
    check_params(tensors.get("start"), tensors.get("trans"), tensors.get("emit"), where=str(weights))
    n_states, vocab_size = tensors["emit"].shape
    if (meta.get("n_states"), meta.get("vocab_size")) != (n_states, vocab_size):
        raise ValueError(
            f"path: {weights} holds {n_states} states x {vocab_size} tokens but {META_FILE} says "
            f"{meta.get('n_states')} x {meta.get('vocab_size')}"
        )
    return tensors, meta


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
        value = torch.as_tensor(value, dtype=torch.float64)
        if not torch.isfinite(value).all() or (value < 0).any():
            raise ValueError(f"{where}: {name} must hold finite non-negative probabilities")
        sums = value.sum(dim=-1)
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
