"""Load a trained model (a transformer, or an LSTM / GRU) back from its run folder.

`load_model` gives the fast training module, `load_lm` the same as a
`storylab.lm.LanguageModel` (for scoring and generation), `load_result` the whole
`TrainResult` (what `train` returned: logs and final figures too, e.g. of a run trained
by other processes); `bridge.load_run` gives a TransformerLens bridge (for
interpretability, transformers only). All read only the run folder: the
weights of its last checkpoint, `config.yaml` and the tokenizer saved in `tokenizer/`,
so they keep working after the cache that built the tokenizer is gone.
A path may name the training folder itself or a notebook run folder holding it as
`model/` (where notebook 03 trains).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
from transformers import PreTrainedTokenizerFast

from storylab.devices import resolve_device
from storylab.lm import LanguageModel
from storylab.tokenizers import load_saved_tokenizer
from storylab.transformer.architectures import build_model, wrap_language_model
from storylab.transformer.checkpoint import latest_checkpoint, load_weights
from storylab.transformer.config import ModelConfig
from storylab.transformer.training import RESULT_FILE, TrainResult, read_run_config
from storylab.transformer.training_logs import EVAL_LOG, TRAIN_LOG, read_jsonl

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
) -> tuple[torch.nn.Module, PreTrainedTokenizerFast | None, ModelConfig]:
    """`(model, tokenizer, model_config)` of a run's last checkpoint; the model (a StoryTransformer, or a
    StoryRNN for a recurrent architecture) is in eval mode."""
    folder = find_model_dir(path)
    model_config, _ = read_run_config(folder)
    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        raise ValueError(f"path: the run at {str(folder)!r} has no checkpoint yet")
    device = resolve_device(device)
    model = build_model(model_config).to(device)
    model.load_state_dict(load_weights(checkpoint, device), strict=True)
    return model.eval(), load_tokenizer(folder), model_config


def load_lm(
    path: str | Path, device: str | torch.device = "auto", stride: int | None = None
) -> tuple[LanguageModel, PreTrainedTokenizerFast]:
    """`(lm, tokenizer)`: a run's last checkpoint as a `TransformerLM` (an `RNNLM` for a recurrent run,
    which takes no `stride`), with the tokens it was trained on."""
    model, tokenizer, _ = load_model(path, device)
    if tokenizer is None:
        raise ValueError(f"path: the run at {str(find_model_dir(path))!r} has no tokenizer/ folder, so no end-of-text id")
    state = json.loads((latest_checkpoint(find_model_dir(path)) / "state.json").read_text())
    return wrap_language_model(model, tokenizer.eos_token_id, train_tokens=int(state["tokens_seen"]), stride=stride), tokenizer


def load_result(path: str | Path, device: str | torch.device = "auto") -> TrainResult:
    """The `TrainResult` of a finished run, rebuilt from its folder (as `train` returned it)."""
    folder = find_model_dir(path)
    result_path = folder / RESULT_FILE
    if not result_path.is_file():
        raise ValueError(f"path: the run at {str(folder)!r} has not finished (no {RESULT_FILE})")
    summary = json.loads(result_path.read_text())
    checkpoint_step = json.loads((latest_checkpoint(folder) / "state.json").read_text())["step"]
    if checkpoint_step != summary["step"]:
        raise ValueError(f"path: the run at {str(folder)!r} is being trained further (checkpoint of step "
                         f"{checkpoint_step}, result of step {summary['step']}); resume it to finish")
    model, _, model_config = load_model(folder, device)
    _, train_config = read_run_config(folder)
    return TrainResult(
        model=model, model_config=model_config, train_config=train_config, out_dir=folder,
        log=pd.DataFrame(read_jsonl(folder / TRAIN_LOG)), eval_log=pd.DataFrame(read_jsonl(folder / EVAL_LOG)),
        val_total_nats=summary["val_total_nats"], val_n_tokens=summary["val_n_tokens"], val_stride=summary["val_stride"],
        eot_id=summary.get("eot_id"), n_params=summary["n_params"], train_tokens=summary["train_tokens"],
        train_tokens_per_s=summary["train_tokens_per_s"], elapsed_s=summary["elapsed_s"],
        peak_rss_mb=summary["peak_rss_mb"], peak_gpu_mb=summary["peak_gpu_mb"],
    )
