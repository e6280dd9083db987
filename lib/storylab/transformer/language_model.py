"""A trained transformer as a `storylab.lm.LanguageModel`, like every other family.

    lm = TransformerLM(result.model, eot_id=tok.eos_token_id, train_tokens=result.train_tokens)
    storylab.lm.score(lm, encoded.validation)      # per story, sliding window, stride recorded

`StoryTransformer` stays a plain `nn.Module` (for training and TransformerLens); this
wrapper adds the interface. Every sequence is scored from its own start with the
end-of-text token before it, as in training, where every story follows one; a story
longer than the context is scored with sliding windows (`scoring`). `next_token_probs`
and `generate` read the last `n_ctx` tokens of end-of-text + prefix: for a prefix
shorter than the context that is exactly what `token_nats` conditions on, for a longer
one it is at least as much context.
"""

from __future__ import annotations

import numpy as np
import torch

from storylab.lm import EOT
from storylab.sampling import generate_tokens
from storylab.token_sequences import as_token_prefix
from storylab.transformer.config import ModelConfig
from storylab.transformer.module_lm import ModuleLM, eval_mode
from storylab.transformer.moe import active_params
from storylab.transformer.options import architecture_label
from storylab.transformer.output_rules import restrict_logits
from storylab.transformer.scoring import check_stride, model_config, model_context_length, window_nats


class TransformerLM(ModuleLM):
    """`module` (ids → logits: a StoryTransformer or a TransformerBridge) as a LanguageModel.

    `stride` is the sliding window's step (default `n_ctx // 2`); `train_tokens` the
    tokens the module was trained on (for `train_flops`); `batch_size` the windows per
    forward pass when scoring.
    """

    family = "transformer"

    def __init__(self, module: torch.nn.Module, eot_id: int, stride: int | None = None, *, train_tokens: int = 0,
                 batch_size: int = 32):
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"module: expected a torch module mapping token ids to logits, got {type(module).__name__}")
        config = model_config(module)
        if config is None or getattr(config, "d_vocab", None) is None:
            raise ValueError(f"module: a {type(module).__name__} has no config with n_ctx and d_vocab")
        super().__init__(module, eot_id, config.d_vocab, train_tokens=train_tokens, batch_size=batch_size)
        self.n_ctx = model_context_length(module)
        self.stride = check_stride(stride, self.n_ctx)

    def with_stride(self, stride: int | None) -> "TransformerLM":
        """This model scored with another sliding-window step (None keeps the current one)."""
        if stride is None:
            return self
        return TransformerLM(self.module, self.eot_id, stride, train_tokens=self._train_tokens, batch_size=self.batch_size)

    def __repr__(self) -> str:
        return f"TransformerLM({self.label}, n_ctx={self.n_ctx}, stride={self.stride}, vocab_size={self.vocab_size})"

    @property
    def label(self) -> str:
        """"transformer L2 d128 h4", with the architecture options when there are any ("..., MoE 4x1")."""
        config = model_config(self.module)
        label = f"transformer L{config.n_layers} d{config.d_model} h{config.n_heads}"
        options = architecture_label(config) if isinstance(config, ModelConfig) else "dense"
        return label if options == "dense" else f"{label}, {options}"

    @property
    def flop_params(self) -> int:
        """The parameters a token passes through (an MoE's active ones), for the 6·N·D estimate."""
        config = model_config(self.module)
        return active_params(config) if isinstance(config, ModelConfig) else self.n_params

    def token_nats(self, sequences) -> list[np.ndarray]:
        """−ln p of every token of every sequence, end-of-text before each, sliding windows past n_ctx."""
        return window_nats(self.module, self.after_eot(sequences), self.n_ctx, self.stride, self.batch_size)

    @torch.no_grad()
    def _probs_after(self, context: list[int], output_rule=None) -> torch.Tensor:
        """p(next token | the last n_ctx tokens of `context`), float64 on the CPU; with `output_rule`,
        renormalised over the tokens the rule allows after the whole `context`."""
        with eval_mode(self.module):
            tokens = torch.tensor([context[-self.n_ctx :]], device=self.device)
            logits = self.module(tokens)[0, -1].double().cpu()
        if output_rule is not None:  # the rule reads the whole text so far, even past the model's context
            logits = restrict_logits(logits, output_rule(torch.tensor([context]))[0, -1])
        return torch.softmax(logits, dim=-1)

    def next_token_probs(self, prefix_ids) -> np.ndarray:
        prefix = as_token_prefix(prefix_ids, self.vocab_size)
        return self._probs_after([self.eot_id, *prefix.tolist()]).numpy()

    @torch.no_grad()
    def next_token_probs_all(self, ids) -> np.ndarray:
        """(len(ids) + 1, V) float64: row t is `next_token_probs(ids[:t])`.

        One forward pass while end-of-text + ids fits the context; past it, row t reads the
        last n_ctx tokens as `next_token_probs` does (a window ending at every position,
        batched), so the rows equal the per-prefix calls either way.
        """
        context = torch.tensor([self.eot_id, *as_token_prefix(ids, self.vocab_size).tolist()], dtype=torch.int64)
        with eval_mode(self.module):
            first = context[: self.n_ctx].to(self.device)
            rows = [self.module(first[None])[0].double().cpu()]
            if len(context) > self.n_ctx:  # one window per later position, ending at it
                windows = context.unfold(0, self.n_ctx, 1)[1:]
                for start in range(0, len(windows), self.batch_size):
                    batch = windows[start : start + self.batch_size].to(self.device)
                    rows.append(self.module(batch)[:, -1].double().cpu())
        return torch.softmax(torch.cat(rows), dim=-1).numpy()

    def generate(self, prefix_ids, max_new_tokens: int, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0, stop_id=EOT, output_rule=None) -> np.ndarray:
        """New token ids after `prefix_ids` (see `storylab.lm`); an `output_rule` (a function from
        `storylab.transformer.output_rules`) restricts each draw to the tokens it allows."""
        context = [self.eot_id, *as_token_prefix(prefix_ids, self.vocab_size).tolist()]
        return generate_tokens(lambda new_ids: self._probs_after(context + new_ids, output_rule), max_new_tokens,
                               vocab_size=self.vocab_size, eot_id=self.eot_id, greedy=greedy, temperature=temperature,
                               top_k=top_k, seed=seed, stop_id=stop_id)

