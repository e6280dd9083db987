"""Open a trained storylab transformer in TransformerLens 4 for analysis.

`to_bridge(model)` (or `load_run(run folder)`) copies the weights into TransformerLens's
native model (whose parameter names `StoryTransformer` shares) and wraps it in a
`TransformerBridge`, which
gives `run_with_cache`, the standard hook names (`blocks.0.hook_resid_pre`,
`blocks.0.attn.hook_pattern`, `ln_final.hook_normalized`, ...) and the weight views
`W_E`, `W_pos`, `W_Q`, `W_K`, `W_V`, `W_O`, `W_in`, `W_out`, `W_U` and their `b_*`.
Its logits equal the training module's to float rounding (tests/test_transformer.py).
Every architecture option opens the same way (`bridge_options` says how each maps onto
TransformerLens; tests/test_transformer_options.py checks logits and hook names).

The bridge's tokenizer prepends a BOS token in `bridge.to_tokens(text)`; storylab's
BOS is the end-of-text token, which is also what precedes every story in training, so
`to_tokens` gives the model the context it was trained with.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from storylab.transformer.config import ModelConfig
from storylab.transformer.model import StoryTransformer
from storylab.transformer.runs import load_model, load_tokenizer

if TYPE_CHECKING:  # transformer_lens takes seconds to import: only analysis pays for it
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge


def tl_config(config: ModelConfig) -> "TransformerBridgeConfig":
    """The TransformerLens config of the native model with `config`'s shape."""
    from transformer_lens.config import TransformerBridgeConfig

    return TransformerBridgeConfig(
        d_model=config.d_model,
        d_head=config.d_head,
        n_layers=config.n_layers,
        n_ctx=config.n_ctx,
        n_heads=config.n_heads,
        d_vocab=config.d_vocab,
        d_mlp=config.d_mlp,
        act_fn=config.act_fn,
        normalization_type=config.normalization,
        eps=config.eps,
        positional_embedding_type="standard",
        init_weights=False,  # the weights are copied in right after
        model_name="storylab",
        attention_dir="causal" if config.objective == "causal" else "bidirectional",
        num_experts=config.n_experts,
        experts_per_token=config.experts_per_token,
    )


def bridge_tokenizer(tokenizer):
    """A copy of `tokenizer` that the bridge may modify (it sets bos/pad to eos in place).

    The bridge rebuilds a tokenizer that has a bos token from `name_or_path`; marking the
    copy as already adding BOS keeps it from doing so (no files or hub needed), and the
    bridge then prepends BOS itself.
    """
    if tokenizer is None:
        return None
    if tokenizer.eos_token is None:
        raise ValueError("tokenizer: expected an end-of-text (eos) token, found none")
    tokenizer = copy.deepcopy(tokenizer)
    if tokenizer.bos_token is None:
        tokenizer.bos_token = tokenizer.eos_token
    tokenizer.init_kwargs["add_bos_token"] = True
    tokenizer.init_kwargs.setdefault("name_or_path", tokenizer.name_or_path)  # read (not loaded) by the bridge
    return tokenizer


def check_transformer(model) -> None:
    """A one-line error for a recurrent model: TransformerLens opens transformers only."""
    config = getattr(model, "config", None)
    architecture = getattr(config, "architecture", "transformer")
    if architecture != "transformer":
        raise ValueError(f"model_or_run: TransformerLens has no {architecture.upper()}; to_bridge opens transformers "
                         f"only (this run has architecture={architecture!r})")


def to_bridge(model_or_run, tokenizer=None, device: str | torch.device | None = None) -> "TransformerBridge":
    """A `TransformerBridge` computing the same logits as a trained model.

    `model_or_run` is a `StoryTransformer`, a `TrainResult` or a run folder written by
    `train` (for the last two the run's saved tokenizer is used unless one is given).
    The bridge lives on `device` (default: the model's device) and is in eval mode.
    """
    # the builder behind boot_native, given our own NativeModel so the trained weights go in
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

    from storylab.transformer.bridge_options import moe_component, native_model

    if isinstance(model_or_run, (str, Path)):
        model, saved_tokenizer, _ = load_model(model_or_run, device=device or "auto")
        tokenizer = tokenizer if tokenizer is not None else saved_tokenizer
    elif hasattr(model_or_run, "out_dir") and hasattr(model_or_run, "model"):  # a TrainResult
        model = model_or_run.model
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model_or_run.out_dir)
    else:
        model = model_or_run
    check_transformer(model)
    if not isinstance(model, StoryTransformer):
        raise ValueError(
            f"model_or_run: expected a StoryTransformer, TrainResult or run folder, got {type(model_or_run).__name__}"
        )
    if device is None:
        device = next(model.parameters()).device
    config = tl_config(model.config)
    native = native_model(copy.deepcopy(config), model.config)
    # strict: every parameter must find its twin, or the bridge would run random weights
    native.load_state_dict(model.state_dict(), strict=True)
    native = native.to(device).eval()
    bridge = build_bridge_from_module(
        native,
        architecture="TransformerLensNative",
        tl_config=config,
        tokenizer=bridge_tokenizer(tokenizer),
        device=device,
        model_name="storylab",
        post_adapter_hook=moe_component if model.config.mlp == "moe" else None,
    )
    return bridge.eval()


def load_run(path: str | Path, device: str | torch.device = "auto"):
    """`(bridge, tokenizer, model_config)`: a run's last checkpoint as a TransformerBridge."""
    model, tokenizer, model_config = load_model(path, device)
    return to_bridge(model, tokenizer), tokenizer, model_config
