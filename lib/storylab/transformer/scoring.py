"""Score token sequences with a causal transformer: sliding windows, batched.

One implementation serves both the per-story `TransformerLM.token_nats` (the interface
every family shares) and `evaluate` (a flat stream, the periodic validation of training).
A sequence longer than the context is covered by windows of `n_ctx` tokens that advance
by `stride`: every window but the first scores only its last `stride` targets, so each
of those is predicted from at least `n_ctx - stride` tokens of context. With
non-overlapping windows (`stride == n_ctx`) the tokens just after each boundary had
almost no context, which cost a small model 0.04 bits/char between strides 64 and 128;
the default stride is `n_ctx // 2`.

Windows of all sequences are sorted by length and batched; a batch is right-padded to
its longest window, which cannot change the logits of the real positions of a causal
model (a position never attends to later ones), and the padded positions are not scored.

`allowed` restricts the softmax: a function of a batch of window inputs (B, T) giving
the tokens that may follow each position (B, T, V) bool, e.g. an output rule
(`output_rules`). The restricted score then reads exactly the windows the full one
does, so `val_loss_restricted` and `val_loss` differ only by the softmax.
`restricted_cross_entropy` is that loss, shared with training.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from storylab.checks import check_int
from storylab.transformer.module_lm import eval_mode

Allowed = Callable[[torch.Tensor], torch.Tensor]  # ids (B, T) -> the tokens allowed to follow each (B, T, V) bool


def model_config(module):
    """The shape config of a StoryTransformer (`config`) or a TransformerBridge (`cfg`), or None."""
    for name in ("config", "cfg"):
        config = getattr(module, name, None)
        if config is not None and hasattr(config, "n_ctx"):
            return config
    return None


def model_context_length(module) -> int:
    """n_ctx of a StoryTransformer or a TransformerBridge."""
    config = model_config(module)
    if config is None:
        raise ValueError(f"model: cannot tell the context length of a {type(module).__name__}; pass n_ctx")
    return int(config.n_ctx)


def default_stride(n_ctx: int) -> int:
    """Half the context: every scored token sees at least n_ctx / 2 tokens before it (when there are that many)."""
    return max(1, n_ctx // 2)


def check_stride(stride: int | None, n_ctx: int) -> int:
    """`stride` checked against the context, or the default for None."""
    if stride is None:
        return default_stride(n_ctx)
    return check_int("stride", stride, minimum=1, below=n_ctx + 1)


def sliding_windows(n_targets: int, n_ctx: int, stride: int) -> list[tuple[int, int, int]]:
    """(window start, window length, first scored position in the window) covering every target once.

    Targets are positions 1..n_targets of a sequence whose position 0 is context only; the
    window starting at `start` of length `length` reads positions start..start+length-1
    and predicts start+1..start+length.
    """
    windows, scored_until, start = [], 0, 0
    while scored_until < n_targets:
        length = min(n_ctx, n_targets - start)
        windows.append((start, length, scored_until - start))
        scored_until = start + length
        start += stride
    return windows


def restricted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, allowed: torch.Tensor | None = None,
                             reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the softmax over the `allowed` tokens (all tokens when None).

    `logits` (B, T, V), `targets` (B, T) (−100: not scored), `allowed` (B, T, V) bool. With
    every token allowed this is exactly `F.cross_entropy` of the full softmax. A target
    outside its allowed set would cost infinitely much: that means the rule does not fit
    the data, and is a ValueError.
    """
    logits = logits.float()
    if allowed is not None:
        check_targets_allowed(allowed, targets)
        logits = logits.masked_fill(~allowed, float("-inf"))
    if reduction == "none":
        return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction=reduction)


def check_targets_allowed(allowed: torch.Tensor, targets: torch.Tensor) -> None:
    """Fail unless every scored target (>= 0) is in its position's allowed set."""
    scored = targets >= 0
    outside = scored & ~allowed.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    if bool(outside.any()):
        raise ValueError(
            f"output_rule: {int(outside.sum())} target token(s) are outside the rule's valid set; the rule does not fit this text"
        )


@torch.no_grad()
def window_nats(module, sequences: list[np.ndarray], n_ctx: int, stride: int, batch_size: int = 32,
                allowed: Allowed | None = None) -> list[np.ndarray]:
    """−ln p of tokens 1.. of each sequence (token 0 is context only), float64, one array per sequence;
    with `allowed`, of the softmax over the allowed tokens only (module docstring)."""
    device = next(module.parameters()).device
    windows = [(index, *window) for index, seq in enumerate(sequences) for window in sliding_windows(len(seq) - 1, n_ctx, stride)]
    windows.sort(key=lambda window: -window[2])  # longest first: each batch pads to its first window
    out = [np.empty(len(seq) - 1, dtype=np.float64) for seq in sequences]
    with eval_mode(module):
        for first_window in range(0, len(windows), batch_size):
            chunk = windows[first_window : first_window + batch_size]
            inputs = np.zeros((len(chunk), chunk[0][2] + 1), dtype=np.int64)  # padding: any valid id, never scored
            for row, (index, start, length, _) in enumerate(chunk):
                inputs[row, : length + 1] = sequences[index][start : start + length + 1]
            tokens = torch.from_numpy(inputs).to(device)
            targets = torch.full_like(tokens[:, 1:], -100)  # only the scored targets: padding may be outside a rule
            for row, (_, _, length, first_scored) in enumerate(chunk):
                targets[row, first_scored:length] = tokens[row, first_scored + 1 : length + 1]
            logits = module(tokens[:, :-1])
            restriction = None if allowed is None else allowed(tokens[:, :-1])
            nats = restricted_cross_entropy(logits, targets, restriction, reduction="none").double().cpu().numpy()
            for row, (index, start, length, first_scored) in enumerate(chunk):
                out[index][start + first_scored : start + length] = nats[row, first_scored:length]
    return out


def evaluate(
    model,
    stream,
    n_ctx: int | None = None,
    eot_id: int | None = None,
    stride: int | None = None,
    batch_size: int = 32,
    max_tokens: int | None = None,
    allowed: Allowed | None = None,
) -> tuple[float, int]:
    """`(total_nats, n_tokens)`: −ln p of every token of one flat `stream` given the tokens before it.

    With `eot_id`, an end-of-text token is put before the stream so its first token is
    scored too (`n_tokens == len(stream)`); without, the first token is context only.
    Windows of `n_ctx` tokens (default: the model's) advance by `stride` (default
    `n_ctx // 2`, see the module docstring). `max_tokens` scores only a prefix of the
    stream (the quick evaluation during training). `allowed` restricts the softmax (module
    docstring). Per-story scores, each story from its own start, are
    `TransformerLM.token_nats` / `storylab.lm.score`.
    """
    n_ctx = n_ctx or model_context_length(model)
    stride = check_stride(stride, n_ctx)
    array = np.asarray(stream)
    if max_tokens is not None:
        array = array[:max_tokens]
    if eot_id is not None:
        array = np.concatenate([np.array([eot_id], dtype=array.dtype), array])
    if array.ndim != 1 or len(array) < 2:
        raise ValueError(f"stream: expected a 1-D token array with at least one token to score, got {len(array)}")
    (nats,) = window_nats(model, [array.astype(np.int64)], n_ctx, stride, batch_size, allowed)
    return float(nats.sum()), len(nats)
