"""The masked-LM objective (`objective="masked"`): BERT-style masking, its loss, and `fill_mask`.

A masked model is the same stack of blocks without the causal mask, trained through the
same `train()` loop on the same random windows: in each window, 15% of the positions
(`TrainConfig.mask_rate`; at least one) are chosen; of those, 80% are replaced by the
`<mask>` token, 10% by a random token and 10% left as they are, and the loss is the
cross-entropy of the original tokens at the chosen positions (Devlin et al. 2019). The
choices of step `s` come from a generator seeded with `(seed, s)`, so a resumed run masks
exactly as an unbroken one. Validation scores the same objective on the validation
stream with one fixed masking, so evaluations are comparable across steps; its nats are
per masked token and there is no bits-per-character figure (a masked LM assigns no
probability to a whole text).

The `<mask>` token: storylab's tokenizers have none, so `with_mask_token` adds
`<mask>` as a special token to a copy of the tokenizer. The tokenizer appends added tokens
after its vocabulary, so `<mask>` gets id `len(tokenizer)` and every existing token
keeps its id: encoded corpora stay valid, and the model's vocabulary is one larger.
`train` does this itself and saves the tokenizer with `<mask>` in the run folder.
"""

from __future__ import annotations

import copy
from typing import Iterable

import numpy as np
import torch

from storylab.prompts import encode_candidates, encode_prompt
from storylab.transformer.config import ModelConfig
from storylab.transformer.module_lm import eval_mode
from storylab.transformer.scoring import model_context_length, restricted_cross_entropy

MASK_TOKEN = "<mask>"
IGNORED = -100  # target of an unscored position (F.cross_entropy's ignore_index)
_EVAL_SEED = 20240303  # the one masking every validation uses


def with_mask_token(tokenizer):
    """`tokenizer` if it has a mask token, else a copy with `<mask>` appended (existing ids unchanged)."""
    if tokenizer.mask_token is not None:
        return tokenizer
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.add_special_tokens({"mask_token": MASK_TOKEN})
    return tokenizer


def mask_windows(windows: torch.Tensor, mask_id: int, vocab_size: int, mask_rate: float,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`(inputs, targets)` of a (B, T) batch: BERT's 80/10/10 corruption of `mask_rate` of the positions.

    `targets` holds the original token at the chosen positions and −100 elsewhere.
    Random replacements are drawn from the vocabulary without the mask token.
    """
    batch, length = windows.shape
    n_chosen = max(1, round(mask_rate * length))
    chosen = np.argsort(rng.random((batch, length)), axis=1)[:, :n_chosen]  # n_chosen distinct positions per row
    kind = rng.random((batch, n_chosen))
    random_ids = rng.integers(0, vocab_size - 1, size=(batch, n_chosen))
    random_ids = random_ids + (random_ids >= mask_id)  # skip the mask id itself
    rows = np.arange(batch)[:, None]
    inputs, targets = windows.clone(), torch.full_like(windows, IGNORED)
    chosen_t, rows_t = torch.from_numpy(chosen), torch.from_numpy(rows)
    targets[rows_t, chosen_t] = windows[rows_t, chosen_t]
    replacement = windows[rows_t, chosen_t].cpu().numpy()
    replacement = np.where(kind < 0.8, mask_id, np.where(kind < 0.9, random_ids, replacement))
    inputs[rows_t, chosen_t] = torch.from_numpy(replacement).to(windows.device, windows.dtype)
    return inputs, targets


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The masking generator of training step `step` (distinct from the window sampler's)."""
    return np.random.default_rng([seed, step, 1])


@torch.no_grad()
def masked_evaluate(model, stream, mask_id: int, mask_rate: float = 0.15, n_ctx: int | None = None,
                    max_tokens: int | None = None, batch_size: int = 32) -> tuple[float, int]:
    """`(total_nats, n_masked)`: the masked-LM loss on non-overlapping windows of `stream`, one fixed masking."""
    n_ctx = n_ctx or model_context_length(model)
    array = np.asarray(stream)[:max_tokens]
    n_windows = len(array) // n_ctx
    if array.ndim != 1 or n_windows == 0:
        raise ValueError(f"val_stream: a masked LM scores whole windows; expected at least n_ctx={n_ctx} tokens, got {len(array)}")
    device = next(model.parameters()).device
    windows = torch.from_numpy(array[: n_windows * n_ctx].astype(np.int64).reshape(n_windows, n_ctx))
    inputs, targets = mask_windows(windows, mask_id, model.config.d_vocab, mask_rate, np.random.default_rng(_EVAL_SEED))
    total = torch.zeros((), dtype=torch.float64, device=device)
    with eval_mode(model):
        for start in range(0, n_windows, batch_size):
            chunk_in = inputs[start : start + batch_size].to(device)
            chunk_target = targets[start : start + batch_size].to(device)
            total += restricted_cross_entropy(model(chunk_in), chunk_target, reduction="sum").double()
    return float(total), int((targets != IGNORED).sum())


def is_causal(model) -> bool:
    """Whether a StoryTransformer or a TransformerBridge attends only to the past."""
    config = getattr(model, "config", None)
    if isinstance(config, ModelConfig):
        return config.objective == "causal"
    cfg = getattr(model, "cfg", None)
    return getattr(cfg, "attention_dir", "causal") == "causal"


@torch.no_grad()
def fill_mask(model, tokenizer, text_with_mask: str, candidates: Iterable[str | int] | None = None,
              prepend_eot: bool = True, append_eot: bool = True):
    """What a masked LM puts at the one `<mask>` in `text_with_mask`.

    Without `candidates`: p(token at the mask | the rest), a 1-D CPU tensor over the
    vocabulary (the `<mask>` token itself, never a training target, is set to 0 and the
    rest renormalised). With `candidates` (strings or token ids): a dict candidate ->
    probability renormalised over the candidates, most likely first.

    A candidate string of several tokens takes as many mask slots, filled left to right:
    its score is the product over its tokens of p(token | the text, the tokens of the
    candidate before it, masks after it) — the usual chain-rule approximation, since a
    masked LM defines no exact probability of a span. Candidates of different lengths
    are then compared with contexts of different lengths, which favours no length by
    construction but is only approximate.

    The text is framed by end-of-text tokens (`prepend_eot`, `append_eot`), as a story
    is in training. `model` is a masked `StoryTransformer` or its bridge.
    """
    mask_token = tokenizer.mask_token
    if mask_token is None:
        raise ValueError("tokenizer: has no mask token; use the tokenizer saved with the masked run (or with_mask_token)")
    if not isinstance(text_with_mask, str) or text_with_mask.count(mask_token) != 1:
        raise ValueError(f"text_with_mask: expected a string with exactly one {mask_token!r}, got {text_with_mask!r}")
    if is_causal(model):
        raise ValueError("model: fill_mask needs a masked LM (objective='masked'); this model is causal")
    before, after = (encode_prompt(tokenizer, part, name="text_with_mask") for part in text_with_mask.split(mask_token))
    eot = [tokenizer.eos_token_id]
    before, after = (eot if prepend_eot else []) + before, after + (eot if append_eot else [])
    mask_id = tokenizer.mask_token_id

    def probs_at(filled: list[int], n_slots: int) -> torch.Tensor:
        ids = before + filled + [mask_id] * (n_slots - len(filled)) + after
        n_ctx = model_context_length(model)
        if len(ids) > n_ctx:
            raise ValueError(f"text_with_mask: {len(ids)} tokens with the candidate exceed the model's n_ctx={n_ctx}")
        logits = model(torch.tensor([ids], device=next(model.parameters()).device))[0, len(before) + len(filled)]
        probs = logits.float().softmax(-1).cpu()
        probs[mask_id] = 0.0
        return probs / probs.sum()

    if candidates is None:
        return probs_at([], 1)
    candidates, encoded = encode_candidates(tokenizer, candidates, allow_ids=True)
    scores = []
    for ids in encoded:
        score = 1.0
        for position, token in enumerate(ids):
            score *= float(probs_at(ids[:position], len(ids))[token])
        scores.append(score)
    total = sum(scores)
    if not total > 0:
        raise ValueError("candidates: the model gives every candidate probability 0")
    ranked = sorted(zip(candidates, (s / total for s in scores)), key=lambda pair: -pair[1])
    return dict(ranked)



def fill_mask_table(model, tokenizer, text_with_mask: str, k: int = 10):
    """The `k` most likely tokens at the `<mask>`, shown like `next_token_table` (`[('a', 12.3%), ...]`)."""
    from storylab.transformer.generation import TokenTable

    probs = fill_mask(model, tokenizer, text_with_mask)
    top = torch.topk(probs, min(k, len(probs)))
    return TokenTable((tokenizer.decode([i]), float(p)) for p, i in zip(top.values, top.indices.tolist()))
