"""Small decoder-only transformers: configure, train, sample, and open in TransformerLens.

- `config`: `ModelConfig` (shape) and `TrainConfig` (recipe), checked on creation
- `model`: `StoryTransformer`, the plain PyTorch module that is trained (fused attention, no hooks)
- `data`: random training windows and `evaluate` (every validation token scored once)
- `schedule`: warm-up + cosine learning rate
- `checkpoint`: atomic safetensors checkpoints with optimizer and RNG state
- `training`: `train(...) -> TrainResult`, resumable
- `runs`: `load_model` / `load_run` from a run folder
- `bridge`: `to_bridge`, a TransformerLens 4 `TransformerBridge` over the same weights
- `generation`: `generate`, `next_token_table`, `next_token_distribution`, `addition_accuracy`
- architecture options (`options`): `sparse_attention` (top-k attention), `moe` (mixture of
  experts, `equal_active_moe`), `masked` (masked LM, `fill_mask`), `output_rules`
  (restricted-output loss and sampling), `bridge_options` (how each opens in TransformerLens)
"""

from storylab.transformer.bridge import to_bridge
from storylab.transformer.config import ModelConfig, TrainConfig
from storylab.transformer.data import evaluate
from storylab.transformer.generation import (
    TokenTable,
    addition_accuracy,
    addition_predictions,
    generate,
    next_token_distribution,
    next_token_probs,
    next_token_table,
)
from storylab.transformer.masked import fill_mask, fill_mask_table, with_mask_token
from storylab.transformer.model import StoryTransformer
from storylab.transformer.moe import active_params, equal_active_moe
from storylab.transformer.options import architecture_columns, architecture_label
from storylab.transformer.output_rules import make_output_rule, output_rule_names, register_output_rule, restricted_nats
from storylab.transformer.runs import load_model, load_run
from storylab.transformer.schedule import learning_rate
from storylab.transformer.training import TrainResult, train

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "StoryTransformer",
    "TrainResult",
    "train",
    "evaluate",
    "learning_rate",
    "load_model",
    "load_run",
    "to_bridge",
    "generate",
    "next_token_probs",
    "next_token_table",
    "next_token_distribution",
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
