"""Export a trained storylab transformer as a Hugging Face GPT-2 folder.

    export_hf(run_dir() / "model", run_dir() / "hf")
    AutoModelForCausalLM.from_pretrained(folder)          # logits equal storylab's (1e-5)
    pipeline("text-generation", model=str(folder))("Once upon a time")

`StoryTransformer` is GPT-2's architecture with untied embeddings (pre-norm LayerNorm
blocks, learned positions, biases on every attention and MLP projection, no bias on the
unembedding), so its weights map one to one onto `GPT2LMHeadModel` with
`tie_word_embeddings=False`. GPT-2 cannot express a recurrent architecture, RMS or no
normalization, heads whose total width differs from the residual stream (`d_head *
n_heads != d_model`), top-k attention, a mixture-of-experts MLP or a masked-LM
objective: each raises a one-line error naming the option (a GPT-2 built from such
weights would load, but compute other logits than the model that was trained).

The folder holds the model (`config.json`, `model.safetensors`) and the run's tokenizer,
whose encoding is set to put the end-of-text token first (`tokenizer(text)` gives
`[eot, ...]`; also its `bos_token`): every story in training followed one, so an
evaluation harness that loads the folder scores text in the context the model learned,
and its log-likelihoods equal `TransformerLM.token_nats` for text shorter than n_ctx.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path

import torch
from tokenizers import processors

from storylab.cache import atomic_dir
from storylab.transformer.config import ModelConfig
from storylab.transformer.model import StoryTransformer
from storylab.transformer.runs import load_model, load_tokenizer

# the activations both StoryTransformer and transformers' ACT2FN compute identically
GPT2_ACTIVATIONS = {"gelu_new": "gelu_new", "gelu": "gelu", "relu": "relu", "silu": "silu"}


def check_gpt2_shape(config: ModelConfig) -> None:
    """A one-line ValueError naming the first option GPT-2 cannot express."""
    if config.architecture != "transformer":
        raise ValueError(f"architecture: GPT-2 has no {config.architecture.upper()}; export_hf exports transformers only")
    # GPT-2 attends densely and causally through one dense MLP per block: any other option
    # would export without error and give different logits
    for name, plain in (("attention", "dense"), ("mlp", "dense"), ("objective", "causal")):
        if getattr(config, name) != plain:
            raise ValueError(f"{name}: GPT-2 has {name}={plain!r} only, this model uses {getattr(config, name)!r}; "
                             f"export_hf needs {name}={plain!r}")
    if config.normalization != "LN":
        raise ValueError(f"normalization: GPT-2 has LayerNorm only, this model uses {config.normalization!r}; "
                         "export_hf needs normalization='LN'")
    if config.d_head * config.n_heads != config.d_model:
        raise ValueError(f"d_head: GPT-2 needs d_head * n_heads == d_model, this model has {config.d_head} * "
                         f"{config.n_heads} != {config.d_model}")
    if config.act_fn not in GPT2_ACTIVATIONS:
        raise ValueError(f"act_fn: GPT-2 export supports {sorted(GPT2_ACTIVATIONS)}, got {config.act_fn!r}")


def gpt2_config(config: ModelConfig, eot_id: int):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=config.d_vocab, n_positions=config.n_ctx, n_embd=config.d_model, n_layer=config.n_layers,
        n_head=config.n_heads, n_inner=config.d_mlp, activation_function=GPT2_ACTIVATIONS[config.act_fn],
        layer_norm_epsilon=config.eps, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=eot_id, eos_token_id=eot_id, tie_word_embeddings=False,
    )


def gpt2_state_dict(model: StoryTransformer) -> dict[str, torch.Tensor]:
    """StoryTransformer weights under GPT-2's names (its Conv1D layers store weights as (in, out))."""
    def t(linear: torch.nn.Linear) -> torch.Tensor:
        return linear.weight.detach().T.contiguous()

    state = {
        "transformer.wte.weight": model.tok_embed.weight, "transformer.wpe.weight": model.pos.weight,
        "transformer.ln_f.weight": model.ln_out.weight, "transformer.ln_f.bias": model.ln_out.bias,
        "lm_head.weight": model.head.weight,
    }
    for i, block in enumerate(model.layers):
        attn, mlp, prefix = block.attn, block.mlp, f"transformer.h.{i}."
        state.update({
            prefix + "ln_1.weight": block.ln1.weight, prefix + "ln_1.bias": block.ln1.bias,
            # GPT-2 splits c_attn's output into q | k | v, each then cut into heads like storylab's
            prefix + "attn.c_attn.weight": torch.cat([t(attn.q), t(attn.k), t(attn.v)], dim=1),
            prefix + "attn.c_attn.bias": torch.cat([attn.q.bias, attn.k.bias, attn.v.bias]),
            prefix + "attn.c_proj.weight": t(attn.o), prefix + "attn.c_proj.bias": attn.o.bias,
            prefix + "ln_2.weight": block.ln2.weight, prefix + "ln_2.bias": block.ln2.bias,
            prefix + "mlp.c_fc.weight": t(mlp.fc_in), prefix + "mlp.c_fc.bias": mlp.fc_in.bias,
            prefix + "mlp.c_proj.weight": t(mlp.fc_out), prefix + "mlp.c_proj.bias": mlp.fc_out.bias,
        })
    return {name: value.detach().float().cpu().contiguous() for name, value in state.items()}


def export_tokenizer(tokenizer, n_ctx: int):
    """A copy of `tokenizer` that puts the end-of-text token before every text it encodes."""
    tokenizer = copy.deepcopy(tokenizer)
    eot = tokenizer.eos_token
    tokenizer.bos_token = eot
    tokenizer.model_max_length = n_ctx
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{eot} $A", pair=f"{eot} $A {eot} $B", special_tokens=[(eot, tokenizer.eos_token_id)])
    return tokenizer


def _model_and_tokenizer(run_or_model, tokenizer):
    if isinstance(run_or_model, (str, Path)):
        model, saved, _ = load_model(run_or_model, device="cpu")
        return model, tokenizer if tokenizer is not None else saved
    if hasattr(run_or_model, "out_dir") and hasattr(run_or_model, "model"):  # a TrainResult
        return run_or_model.model, tokenizer if tokenizer is not None else load_tokenizer(run_or_model.out_dir)
    if isinstance(getattr(run_or_model, "module", None), StoryTransformer):  # a TransformerLM
        return run_or_model.module, tokenizer
    return run_or_model, tokenizer


def export_hf(run_or_model, folder: str | Path, tokenizer=None) -> Path:
    """Write `folder` as a Hugging Face `save_pretrained` folder (GPT-2 + tokenizer); returns it.

    `run_or_model` is a run folder, a `TrainResult`, a `TransformerLM` or a
    `StoryTransformer` (the last two need `tokenizer`). `folder` must not exist or be
    empty; it is built under a temporary name and renamed into place.
    """
    model, tokenizer = _model_and_tokenizer(run_or_model, tokenizer)
    if isinstance(getattr(model, "config", None), ModelConfig):  # before the type check: an RNN is named as one
        check_gpt2_shape(model.config)
    if not isinstance(model, StoryTransformer):
        raise ValueError(f"run_or_model: expected a run folder, TrainResult, TransformerLM or StoryTransformer, "
                         f"got {type(run_or_model).__name__}")
    if tokenizer is None or tokenizer.eos_token_id is None:
        raise ValueError("tokenizer: expected the run's tokenizer (with an end-of-text token); pass tokenizer=")
    folder = Path(folder)
    if folder.exists():
        if not folder.is_dir() or any(folder.iterdir()):
            raise ValueError(f"folder: {folder} already exists and is not empty; choose a new folder")
        folder.rmdir()  # atomic_dir keeps an existing folder; an empty one is ours to replace
    from transformers import GPT2LMHeadModel

    hf_config = gpt2_config(model.config, tokenizer.eos_token_id)
    state = gpt2_state_dict(model)

    def build(tmp: Path) -> None:
        hf_model = GPT2LMHeadModel(hf_config)
        hf_model.load_state_dict(state, strict=True)
        with _quiet_transformers():  # no "Writing model shards" bar in a notebook's report for a one-file model
            hf_model.save_pretrained(str(tmp))
        export_tokenizer(tokenizer, model.config.n_ctx).save_pretrained(str(tmp))

    return atomic_dir(folder, build)


@contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
