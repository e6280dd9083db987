"""Token windows for training and the validation score every model is compared by.

Training batches are random windows of a flat token stream (stories each followed by
the end-of-text token). The windows of step `s` come from a generator seeded with
`(seed, s)`, so a run resumed at any step draws exactly the batches an unbroken run
would, without saving any sampler state.

`evaluate` scores every token of a stream exactly once (the first too, when an
end-of-text token is given to put before it), so that
`total_nats / ln 2 / n_chars` is the validation bits per character.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def check_stream(name: str, stream, vocab_size: int, min_len: int) -> np.ndarray:
    """`stream` as a 1-D integer array with ids below `vocab_size` and at least `min_len` tokens."""
    array = np.asarray(stream)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: expected a 1-D array of integer token ids, got shape {array.shape} {array.dtype}")
    if len(array) < min_len:
        raise ValueError(f"{name}: expected at least {min_len} tokens, got {len(array)}")
    if len(array) and (int(array.max()) >= vocab_size or int(array.min()) < 0):
        raise ValueError(
            f"{name}: token ids must lie in [0, {vocab_size}) (vocab_size), found [{int(array.min())}, {int(array.max())}]"
        )
    return array


def train_batch(stream: np.ndarray, n_ctx: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """`batch_size` random windows of `n_ctx + 1` tokens (inputs plus shifted targets) for `step`."""
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(stream) - n_ctx, size=batch_size)
    windows = np.stack([stream[start : start + n_ctx + 1] for start in starts])
    return torch.from_numpy(windows.astype(np.int64))


def _scored_windows(n_targets: int, n_ctx: int, stride: int):
    """(window start, window length, first scored position in the window) covering every target once.

    Targets are positions 1..n_targets of the (possibly eot-prefixed) stream; window
    starting at `start` of length `length` predicts targets start+1..start+length. With
    `stride < n_ctx`, every window but the first scores only its last `stride` targets,
    so each of those sees at least `n_ctx - stride` tokens of context.
    """
    windows, scored_until = [], 0
    start = 0
    while scored_until < n_targets:
        length = min(n_ctx, n_targets - start)
        windows.append((start, length, scored_until - start))
        scored_until = start + length
        start += stride
    return windows


@torch.no_grad()
def evaluate(
    model,
    stream,
    n_ctx: int | None = None,
    eot_id: int | None = None,
    stride: int | None = None,
    batch_size: int = 32,
    max_tokens: int | None = None,
) -> tuple[float, int]:
    """`(total_nats, n_tokens)`: −ln p of every token of `stream` given the tokens before it.

    With `eot_id`, an end-of-text token is put before the stream so its first token is
    scored too (`n_tokens == len(stream)`); without, the first token is context only.
    Windows of `n_ctx` tokens (default: the model's) are non-overlapping by default, so
    a token's context reaches back to the start of its window; a `stride < n_ctx` gives
    every token at least `n_ctx - stride` tokens of context at more compute.
    `max_tokens` scores only a prefix of the stream (the quick evaluation during training).
    """
    n_ctx = n_ctx or model_context_length(model)
    stride = stride or n_ctx
    if not 1 <= stride <= n_ctx:
        raise ValueError(f"stride: expected 1 <= stride <= n_ctx={n_ctx}, got {stride}")
    array = np.asarray(stream)
    if max_tokens is not None:
        array = array[:max_tokens]
    if eot_id is not None:
        array = np.concatenate([np.array([eot_id], dtype=array.dtype), array])
    if array.ndim != 1 or len(array) < 2:
        raise ValueError(f"stream: expected a 1-D token array with at least one token to score, got {len(array)}")
    device = next(model.parameters()).device
    tokens = torch.from_numpy(array.astype(np.int64)).to(device)
    n_targets = len(array) - 1

    total_nats = torch.zeros((), dtype=torch.float64, device=device)
    by_length: dict[int, list[tuple[int, int]]] = {}
    for start, length, first_scored in _scored_windows(n_targets, n_ctx, stride):
        by_length.setdefault(length, []).append((start, first_scored))
    was_training = model.training
    model.eval()
    try:
        for length, group in by_length.items():  # equal-length windows batch together
            for i in range(0, len(group), batch_size):
                chunk = group[i : i + batch_size]
                index = torch.tensor([start for start, _ in chunk], device=device)[:, None] + torch.arange(
                    length + 1, device=device
                )
                windows = tokens[index]
                logits = model(windows[:, :-1]).float()
                nats = F.cross_entropy(logits.transpose(1, 2), windows[:, 1:], reduction="none")
                keep = torch.arange(length, device=device)[None, :] >= torch.tensor(
                    [first for _, first in chunk], device=device
                )[:, None]
                total_nats += (nats * keep).sum(dtype=torch.float64)
    finally:
        model.train(was_training)
    return float(total_nats), n_targets


def model_context_length(model) -> int:
    """n_ctx of a StoryTransformer or a TransformerBridge."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "n_ctx"):
        return config.n_ctx
    cfg = getattr(model, "cfg", None)
    if cfg is not None and hasattr(cfg, "n_ctx"):
        return cfg.n_ctx
    raise ValueError(f"model: cannot tell the context length of a {type(model).__name__}; pass n_ctx")
