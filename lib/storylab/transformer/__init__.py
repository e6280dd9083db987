"""Small decoder-only transformers: configure, train, score, sample, export, and open in TransformerLens.

Modules, each importing only the ones listed before it:
- `config`: `ModelConfig` (shape) and `TrainConfig` (recipe), checked on creation; `configs_from_params`
- `model`: `StoryTransformer`, the plain PyTorch module that is trained (fused attention, no hooks)
- `data`: random training windows
- `scoring`: sliding-window scoring of sequences; `evaluate` (a flat stream)
- `language_model`: `TransformerLM`, a module as a `storylab.lm.LanguageModel`
- `rnn`: the recurrent family (`architecture="lstm"` / `"gru"`): `StoryRNN` and `RNNLM`
- `architectures`: what `ModelConfig.architecture` names: `build_model`, `wrap_language_model`
- `schedule`: warm-up + cosine learning rate
- `checkpoint`: atomic safetensors checkpoints with optimizer and RNG state
- `training_logs`: the JSONL logs and their TensorBoard names
- `data_parallel`: training across processes (DistributedDataParallel, rank 0 writes)
- `training`: `train(...) -> TrainResult`, resumable, TensorBoard through a `Tracker`, across processes
- `runs`: `load_model` / `load_lm` / `load_result` from a run folder
- `distributed_train`: `train_with_torchrun` (several processes from a notebook) and the torchrun entry point
- `bridge`: `to_bridge` / `load_run`, a TransformerLens 4 `TransformerBridge` over the same weights
- `export`: `export_hf`, a Hugging Face `save_pretrained` folder (GPT-2)
- `generation`: text-level `generate`, `next_token_table`, `addition_accuracy`
- architecture options (`options`): `sparse_attention` (top-k attention), `moe` (mixture of
  experts, `equal_active_moe`), `masked` (masked LM, `fill_mask`), `output_rules`
  (restricted-output loss and sampling), `bridge_options` (how each opens in TransformerLens)
"""

from storylab.transformer.bridge import load_run, to_bridge
from storylab.transformer.config import ModelConfig, TrainConfig, configs_from_params
from storylab.transformer.export import export_hf
from storylab.transformer.generation import (
    TokenTable,
    addition_accuracy,
    addition_predictions,
    generate,
    next_token_table,
)
from storylab.transformer.language_model import TransformerLM
from storylab.transformer.masked import fill_mask, fill_mask_table, with_mask_token
from storylab.transformer.model import StoryTransformer
from storylab.transformer.moe import active_params, equal_active_moe
from storylab.transformer.options import architecture_columns, architecture_label
from storylab.transformer.output_rules import make_output_rule, output_rule_names, register_output_rule, restricted_nats
from storylab.transformer.rnn import RNNLM, StoryRNN
from storylab.transformer.runs import load_lm, load_model, load_result
from storylab.transformer.schedule import learning_rate
from storylab.transformer.scoring import evaluate
from storylab.transformer.training import TrainResult, train

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "configs_from_params",
    "StoryTransformer",
    "TransformerLM",
    "StoryRNN",
    "RNNLM",
    "load_result",
    "train_with_torchrun",
    "TrainResult",
    "train",
    "evaluate",
    "learning_rate",
    "load_model",
    "load_lm",
    "load_run",
    "to_bridge",
    "export_hf",
    "generate",
    "next_token_table",
    "TokenTable",
    "addition_accuracy",
    "addition_predictions",
    "fill_mask",
    "fill_mask_table",
    "make_output_rule",
    "with_mask_token",
    "active_params",
    "equal_active_moe",
    "register_output_rule",
    "output_rule_names",
    "restricted_nats",
    "architecture_columns",
    "architecture_label",
]


def __getattr__(name: str):
    # imported on first use: `python -m storylab.transformer.distributed_train` (each torchrun
    # process) must not find that module already imported by its own package
    if name == "train_with_torchrun":
        from storylab.transformer.distributed_train import train_with_torchrun

        return train_with_torchrun
    raise AttributeError(f"module 'storylab.transformer' has no attribute {name!r}")
