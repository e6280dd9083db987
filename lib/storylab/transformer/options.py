"""The architecture and objective options of a transformer run, and their checks.

`ModelConfig` and `TrainConfig` call these from `__post_init__`, so a bad option is a
one-line ValueError naming it before any compute. The options themselves are built
elsewhere: top-k attention in `sparse_attention`, the mixture-of-experts MLP in `moe`,
the masked-LM objective in `masked`, restricted-output rules in `output_rules`.

| option | values | needs |
|---|---|---|
| `attention` | "dense" (default), "topk" | `attention_k` (keys kept per query) with "topk" |
| `mlp` | "dense" (default), "moe" | `n_experts`, `experts_per_token` (default 1) with "moe" |
| `objective` | "causal" (default), "masked" | `mask_id` (filled in by `train` from the tokenizer) |
| `architecture` | "transformer" (default), "lstm", "gru" | a recurrent model (`rnn`) takes only the plain options |

A recurrent architecture reads `n_layers` (stacked recurrent layers), `d_model` (their
hidden width, also the embedding width) and `n_ctx` (its training window, the length of
truncated backpropagation through time), and ignores the transformer's shape fields
`n_heads`, `d_head`, `d_mlp`, `act_fn`, `normalization` and `eps` (03 passes them for
every architecture). The options that have no meaning without attention blocks
(`attention="topk"`, `mlp="moe"`, `objective="masked"`) are refused with a one-line error.
"""

from __future__ import annotations

from storylab.checks import check_int, check_number
from storylab.transformer.output_rules import output_rule_names

ATTENTIONS = ("dense", "topk")
MLPS = ("dense", "moe")
OBJECTIVES = ("causal", "masked")
ARCHITECTURES = ("transformer", "lstm", "gru")
RECURRENT = ("lstm", "gru")


def _choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")


def _unused(name: str, value, option: str) -> None:
    if value is not None:
        raise ValueError(f"{name}: only used with {option}; leave it None, got {value!r}")


def check_model_options(config) -> dict:
    """Check a ModelConfig's option fields; returns the defaults to fill in (field -> value)."""
    filled = {}
    _choice("architecture", config.architecture, ARCHITECTURES)
    if config.architecture in RECURRENT:
        for name, plain, what in (("attention", "dense", "attention"), ("mlp", "dense", "MLP blocks"),
                                  ("objective", "causal", "bidirectional attention for a masked LM")):
            if getattr(config, name) != plain:
                raise ValueError(f"{name}: {getattr(config, name)!r} is a transformer option and "
                                 f"architecture={config.architecture!r} has no {what}; use {name}={plain!r}")
    _choice("attention", config.attention, ATTENTIONS)
    if config.attention == "topk":
        check_int("attention_k", config.attention_k, minimum=1)
    else:
        _unused("attention_k", config.attention_k, "attention='topk'")
    _choice("mlp", config.mlp, MLPS)
    if config.mlp == "moe":
        check_int("n_experts", config.n_experts, minimum=1)
        per_token = 1 if config.experts_per_token is None else config.experts_per_token
        check_int("experts_per_token", per_token, minimum=1, below=config.n_experts + 1)
        filled["experts_per_token"] = per_token
    else:
        _unused("n_experts", config.n_experts, "mlp='moe'")
        _unused("experts_per_token", config.experts_per_token, "mlp='moe'")
    _choice("objective", config.objective, OBJECTIVES)
    if config.objective == "masked":
        if config.mask_id is not None:
            below = config.d_vocab if config.d_vocab is not None else None
            check_int("mask_id", config.mask_id, minimum=0, below=below)
    else:
        _unused("mask_id", config.mask_id, "objective='masked'")
    return filled


def check_train_options(config) -> None:
    """Check a TrainConfig's option fields."""
    check_number("aux_loss_weight", config.aux_loss_weight)
    if not (isinstance(config.mask_rate, (int, float)) and not isinstance(config.mask_rate, bool)
            and 0 < config.mask_rate < 1):
        raise ValueError(f"mask_rate: expected a fraction in (0, 1), got {config.mask_rate!r}")
    # only the type here: a run folder saved with a user's rule must load where that rule is not
    # registered; `train` and `generate` check the name (make_output_rule) before any compute
    if config.output_rule is not None and not (isinstance(config.output_rule, str) and config.output_rule):
        raise ValueError(f"output_rule: expected the name of a registered rule ({output_rule_names()}) or None, "
                         f"got {config.output_rule!r}")


def architecture_columns(model_config, train_config) -> dict:
    """The option values of a run, for a results table (05_compare) next to the model's size."""
    from storylab.transformer.moe import active_params
    from storylab.transformer.rnn import recurrent_params

    count = recurrent_params if model_config.architecture in RECURRENT else active_params
    return {"attention": model_config.attention, "attention_k": model_config.attention_k, "mlp": model_config.mlp,
            "n_experts": model_config.n_experts, "experts_per_token": model_config.experts_per_token,
            "objective": model_config.objective, "output_rule": train_config.output_rule,
            "active_params": count(model_config), "architecture": architecture_label(model_config, train_config)}


def architecture_label(model_config, train_config=None) -> str:
    """A short name of the options in use: "dense", "top-4 attention, MoE 4x1", "restricted (addition)", ..."""
    if model_config.architecture in RECURRENT:
        return model_config.architecture.upper()
    parts = []
    if model_config.attention == "topk":
        parts.append(f"top-{model_config.attention_k} attention")
    if model_config.mlp == "moe":
        parts.append(f"MoE {model_config.n_experts}x{model_config.experts_per_token}")
    if model_config.objective == "masked":
        parts.append("masked LM")
    if train_config is not None and train_config.output_rule is not None:
        parts.append(f"restricted ({train_config.output_rule})")
    return ", ".join(parts) or "dense"
