"""What `ModelConfig.architecture` names: the module `train` builds and the LanguageModel that wraps it.

| architecture | module | language model |
|---|---|---|
| "transformer" (default) | `model.StoryTransformer` | `language_model.TransformerLM` (sliding window) |
| "lstm", "gru" | `rnn.StoryRNN` | `rnn.RNNLM` (state carried over the whole story) |

Everything that turns a config or a trained module into a model goes through here, so a
new family is one row of this table, not a branch in the training loop or the loaders.
"""

from __future__ import annotations

import torch

from storylab.lm import LanguageModel
from storylab.transformer.config import ModelConfig
from storylab.transformer.language_model import TransformerLM
from storylab.transformer.model import StoryTransformer
from storylab.transformer.options import RECURRENT
from storylab.transformer.rnn import RNNLM, StoryRNN


def is_recurrent(config: ModelConfig) -> bool:
    return config.architecture in RECURRENT


def build_model(config: ModelConfig, seed: int = 0) -> torch.nn.Module:
    """The freshly initialised module of `config` (`seed` fixes its weights)."""
    return StoryRNN(config, seed=seed) if is_recurrent(config) else StoryTransformer(config, seed=seed)


def wrap_language_model(module: torch.nn.Module, eot_id: int, *, train_tokens: int = 0,
                        stride: int | None = None) -> LanguageModel:
    """A trained module as a `storylab.lm.LanguageModel`; `stride` is a transformer's sliding-window step."""
    if isinstance(module, StoryRNN):
        if stride is not None:
            raise ValueError("stride: a recurrent model reads the whole story in one pass and has no sliding window; "
                             "leave stride None")
        return RNNLM(module, eot_id, train_tokens=train_tokens)
    return TransformerLM(module, eot_id, stride, train_tokens=train_tokens)


def as_language_model(model, tokenizer) -> LanguageModel:
    """`model` itself if it is a LanguageModel, else a module wrapped with the tokenizer's end-of-text id."""
    if isinstance(model, torch.nn.Module):
        if tokenizer is None or tokenizer.eos_token_id is None:
            raise ValueError("tokenizer: expected a tokenizer with an end-of-text (eos) token to wrap a bare module")
        return wrap_language_model(model, tokenizer.eos_token_id)
    if isinstance(model, LanguageModel):
        return model
    raise ValueError(f"model: expected a storylab LanguageModel or a transformer module, got {type(model).__name__}")
