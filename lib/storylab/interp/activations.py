"""Token sequences to analyse, and the residual stream at every layer over many positions.

Each story becomes `[eot] + story + [eot]` (cut to the model's context): the end-of-text
token is what precedes a story in training, and the final one is scored like any token.
`collect_residuals` runs the bridge with `run_with_cache` and keeps, for every real (not
padding) position, the residual stream before each block and after the last one — the
L + 1 points `resid_pre 0 … resid_pre L-1, resid_post L-1` — plus the token, the next
token, the position and the story it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from storylab.checks import check_int
from storylab.tokenizers import encode_texts


def story_sequences(tokenizer, texts: Sequence[str], n_ctx: int, max_stories: int | None = None) -> list[np.ndarray]:
    """`[eot] + tokens + [eot]` per story, cut to `n_ctx` tokens (int64 arrays)."""
    if isinstance(texts, str) or not len(texts):
        raise ValueError(f"texts: expected a non-empty list of stories, got {type(texts).__name__}")
    if max_stories is not None:
        check_int("max_stories", max_stories, minimum=1)
        texts = list(texts)[:max_stories]
    eot = tokenizer.eos_token_id
    return [np.asarray([eot, *ids, eot], dtype=np.int64)[:n_ctx] for ids in encode_texts(tokenizer, list(texts))]


def resid_hook_names(n_layers: int) -> list[str]:
    """The L + 1 residual-stream hooks: before each block, and after the last one."""
    return [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)] + [f"blocks.{n_layers - 1}.hook_resid_post"]


def resid_labels(n_layers: int) -> list[str]:
    return ["embed"] + [f"after L{layer}" for layer in range(n_layers)]


@dataclass
class ResidualSample:
    """The residual stream at N positions: `resid[point, n, :]` for the L + 1 points of `labels`."""

    resid: torch.Tensor  # (L + 1, N, d_model), float32 on the CPU
    token_ids: np.ndarray  # (N,) the token at each position
    next_ids: np.ndarray  # (N,) the following token, −1 at a sequence's last position
    positions: np.ndarray  # (N,) position in its sequence (0 is the leading end-of-text token)
    sequence_index: np.ndarray  # (N,) which sequence
    labels: list[str]

    @property
    def n_positions(self) -> int:
        return self.resid.shape[1]


def pad_batch(sequences: Sequence[np.ndarray], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, T) ids and the (B, T) mask of real tokens; causal attention never sees the padding."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros(len(sequences), length, dtype=torch.bool)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(np.asarray(seq, dtype=np.int64))
        mask[row, : len(seq)] = True
    return ids, mask


def _check_sequences(bridge, sequences) -> None:
    if isinstance(sequences, (str, np.ndarray, torch.Tensor)) or not len(sequences):
        raise ValueError("sequences: expected a non-empty list of 1-D token-id arrays")
    for i, seq in enumerate(sequences):
        seq = np.asarray(seq)
        if seq.ndim != 1 or not 1 <= len(seq) <= bridge.cfg.n_ctx:
            raise ValueError(f"sequences: sequence {i} must be 1-D with 1..n_ctx={bridge.cfg.n_ctx} tokens, got shape {seq.shape}")
        if seq.min() < 0 or seq.max() >= bridge.cfg.d_vocab:
            raise ValueError(f"sequences: sequence {i} holds ids outside [0, d_vocab={bridge.cfg.d_vocab})")


@torch.no_grad()
def collect_residuals(bridge, sequences: Sequence[np.ndarray], batch_size: int = 32) -> ResidualSample:
    """The residual stream at every real position of `sequences` (see the module docstring)."""
    _check_sequences(bridge, sequences)
    n_layers = bridge.cfg.n_layers
    names = resid_hook_names(n_layers)
    device = bridge.W_E.device
    chunks, tokens, nexts, positions, which = [], [], [], [], []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        ids, mask = pad_batch(batch)
        _, cache = bridge.run_with_cache(ids.to(device), names_filter=lambda name: name in names)
        stacked = torch.stack([cache[name] for name in names])  # (L + 1, B, T, d)
        chunks.append(stacked[:, mask.to(device)].float().cpu())
        for row, seq in enumerate(batch):
            seq = np.asarray(seq, dtype=np.int64)
            tokens.append(seq)
            nexts.append(np.append(seq[1:], -1))
            positions.append(np.arange(len(seq)))
            which.append(np.full(len(seq), start + row))
    return ResidualSample(torch.cat(chunks, dim=1), np.concatenate(tokens), np.concatenate(nexts),
                          np.concatenate(positions), np.concatenate(which), resid_labels(n_layers))
