"""Load a trained transformer back from its run folder.

`load_model` gives the fast training module, `load_lm` the same as a
`storylab.lm.LanguageModel` (for scoring and generation); `bridge.load_run` gives a
TransformerLens bridge (for interpretability). All read only the run folder: the
weights of its last checkpoint, `config.yaml` and the tokenizer saved in `tokenizer/`,
so they keep working after the cache that built the tokenizer is gone.
A path may name the training folder itself or a notebook run folder holding it as
`model/` (where notebook 03 trains).
"""

from __future__ import annotations

from pathlib import Path

import json

import torch
from transformers import PreTrainedTokenizerFast

from storylab.devices import resolve_device
from storylab.tokenizers import load_saved_tokenizer
from storylab.transformer.checkpoint import latest_checkpoint, load_weights
from storylab.transformer.config import ModelConfig
from storylab.transformer.language_model import TransformerLM
from storylab.transformer.model import StoryTransformer
from storylab.transformer.training import read_run_config

MODEL_SUBDIR = "model"


def find_model_dir(path: str | Path) -> Path:
    """The training folder at `path` or at `path/model`."""
    path = Path(path)
    for candidate in (path, path / MODEL_SUBDIR):
        if (candidate / "config.yaml").exists():
            return candidate
    raise ValueError(f"path: no transformer run (config.yaml) at {str(path)!r} or in its {MODEL_SUBDIR!r} folder")


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast | None:
    folder = find_model_dir(path) / "tokenizer"
    return load_saved_tokenizer(folder) if folder.is_dir() else None


def load_model(
    path: str | Path, device: str | torch.device = "auto"
) -> tuple[StoryTransformer, PreTrainedTokenizerFast | None, ModelConfig]:
    """`(model, tokenizer, model_config)` of a run's last checkpoint; the model is in eval mode."""
    folder = find_model_dir(path)
    model_config, _ = read_run_config(folder)
    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        raise ValueError(f"path: the run at {str(folder)!r} has no checkpoint yet")
    device = resolve_device(device)
    model = StoryTransformer(model_config).to(device)
    model.load_state_dict(load_weights(checkpoint, device), strict=True)
    return model.eval(), load_tokenizer(folder), model_config


def load_lm(
    path: str | Path, device: str | torch.device = "auto", stride: int | None = None
) -> tuple[TransformerLM, PreTrainedTokenizerFast]:
    """`(lm, tokenizer)`: a run's last checkpoint as a `TransformerLM`, with the tokens it was trained on."""
    model, tokenizer, _ = load_model(path, device)
    if tokenizer is None:
        raise ValueError(f"path: the run at {str(find_model_dir(path))!r} has no tokenizer/ folder, so no end-of-text id")
    state = json.loads((latest_checkpoint(find_model_dir(path)) / "state.json").read_text())
    return TransformerLM(model, tokenizer.eos_token_id, stride, train_tokens=int(state["tokens_seen"])), tokenizer
