"""What the two neural language models share: a trained torch module as a `storylab.lm.LanguageModel`.

`TransformerLM` (sliding windows) and `RNNLM` (state carried over the story) differ in how
they read a story; the rest is here once: the 6·N·D FLOPs estimate, the end-of-text token
put before every sequence (every story followed one in training), the checks of the
constructor's arguments, and `eval_mode` for the forward passes of scoring and generation.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from storylab.checks import check_int
from storylab.token_sequences import as_token_sequences

FLOPS_PER_PARAM_PER_TOKEN = 6.0  # forward (2) + backward (4) multiply-adds per parameter per training token


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`module` in eval mode for the block, then back in the mode it was in (a training loop may be
    scoring its own model mid-run)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class ModuleLM:
    """The shared half of `TransformerLM` and `RNNLM`; a subclass reads stories its own way (`token_nats`)."""

    stride: int | None = None  # the sliding window's step; None: no window (the whole story in one pass)

    def __init__(self, module: torch.nn.Module, eot_id: int, vocab_size: int, *, train_tokens: int = 0,
                 batch_size: int = 32):
        self.module = module
        self.vocab_size = int(vocab_size)
        self.eot_id = check_int("eot_id", eot_id, below=self.vocab_size)
        self._train_tokens = check_int("train_tokens", train_tokens)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)

    def with_stride(self, stride: int | None) -> "ModuleLM":
        """This model scored with another sliding-window step; a model without a window is itself."""
        return self

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    @property
    def train_tokens(self) -> int:
        return self._train_tokens

    @property
    def flop_params(self) -> int:
        """The parameters each token passes through (all of them, unless a subclass routes tokens)."""
        return self.n_params

    @property
    def train_flops(self) -> float:
        """The usual 6·N·D estimate, N = `flop_params`."""
        return FLOPS_PER_PARAM_PER_TOKEN * self.flop_params * self.train_tokens

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def after_eot(self, sequences) -> list[np.ndarray]:
        """Each sequence (checked against the vocabulary) with the end-of-text token before it, int64."""
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        return [np.concatenate([[self.eot_id], seq]).astype(np.int64) for seq in seqs]
