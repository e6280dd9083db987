"""The two small configs of a transformer run: the model's shape and the training recipe.

Both are plain dataclasses that round-trip through a dict (and so through the run
folder's `config.yaml`), and both check their own values, so a bad parameter fails with
a one-line ValueError naming it before any compute. Their defaults are those of
`notebooks/03_transformer.ipynb`'s parameters cell (a test keeps them equal), and
`configs_from_params` builds both from that cell's values in one call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from storylab.checks import check_int, check_number
from storylab.transformer.options import check_model_options, check_train_options

ACT_FNS = ("gelu", "gelu_new", "relu", "silu")  # the activations the TL-native model also has
NORMALIZATIONS = ("LN", "RMS", None)


def _from_dict(cls, data: dict):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; expected some of {sorted(known)}")
    return cls(**data)


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a decoder-only transformer (pre-norm, learned positions, untied unembedding).

    `d_head` defaults to d_model // n_heads and `d_mlp` to 4 * d_model; `d_vocab` is the
    tokenizer's `len(tokenizer)` and is filled in by `train` when left as None.
    `normalization` is "LN" (LayerNorm), "RMS" (RMSNorm) or None (no normalization).
    The architecture options (`attention`, `mlp`, `objective`) are described in `options`.
    `architecture="lstm"` (or "gru") makes the same config describe a recurrent model
    (`rnn`): `n_layers` recurrent layers of width `d_model`, trained on windows of `n_ctx`
    tokens; the transformer-only shape fields are then ignored (`options` lists them).
    """

    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_head: int | None = None
    d_mlp: int | None = None
    n_ctx: int = 256
    act_fn: str = "gelu_new"
    normalization: str | None = "LN"
    d_vocab: int | None = None
    eps: float = 1e-5
    # architecture options (storylab.transformer.options); the defaults are the plain model
    attention: str = "dense"  # "dense" or "topk": each query attends only its attention_k largest scores
    attention_k: int | None = None
    mlp: str = "dense"  # "dense" or "moe": a routed mixture of n_experts MLPs of width d_mlp
    n_experts: int | None = None
    experts_per_token: int | None = None  # experts each token is routed to (default 1, Switch-style)
    objective: str = "causal"  # "causal" (next token) or "masked" (no causal mask, fill masked tokens)
    mask_id: int | None = None  # the <mask> token of a masked LM (train fills it in from the tokenizer)
    architecture: str = "transformer"  # "transformer", or a recurrent model: "lstm" or "gru" (storylab.transformer.rnn)

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "n_ctx"):
            check_int(name, getattr(self, name), minimum=1)
        if self.architecture != "transformer":  # a recurrent model: no heads or MLP to derive
            for name, value in check_model_options(self).items():
                object.__setattr__(self, name, value)
            if self.d_vocab is not None:
                check_int("d_vocab", self.d_vocab, minimum=1)
            return
        if self.d_head is None:
            if self.d_model % self.n_heads:
                raise ValueError(
                    f"d_head: d_model={self.d_model} is not divisible by n_heads={self.n_heads}; give d_head explicitly"
                )
            object.__setattr__(self, "d_head", self.d_model // self.n_heads)
        if self.d_mlp is None:
            object.__setattr__(self, "d_mlp", 4 * self.d_model)
        for name in ("d_head", "d_mlp"):
            check_int(name, getattr(self, name), minimum=1)
        if self.d_vocab is not None:
            check_int("d_vocab", self.d_vocab, minimum=1)
        if self.act_fn not in ACT_FNS:
            raise ValueError(f"act_fn: expected one of {ACT_FNS}, got {self.act_fn!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization: expected one of {NORMALIZATIONS}, got {self.normalization!r}")
        if not (isinstance(self.eps, (int, float)) and self.eps > 0):
            raise ValueError(f"eps: expected a positive number, got {self.eps!r}")
        for name, value in check_model_options(self).items():
            object.__setattr__(self, name, value)

    def with_vocab(self, d_vocab: int) -> "ModelConfig":
        """This config with `d_vocab` set; an already-set, different value is an error."""
        if self.d_vocab is not None and self.d_vocab != d_vocab:
            raise ValueError(f"vocab_size: the model config says d_vocab={self.d_vocab} but vocab_size={d_vocab}")
        return replace(self, d_vocab=d_vocab)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe: AdamW, linear warm-up then cosine decay to `min_lr`, clipping.

    The run stops at `max_steps` or after `max_minutes` of training, whichever comes
    first (at least one must be set). Weight decay applies to the matrices that multiply
    activations (attention, MLP, unembedding) and not to embeddings, norms or biases,
    which shrinking would only distort. `max_grad_norm=0` turns clipping off.
    `bf16_autocast` runs the forward pass in bfloat16 on CUDA and is ignored on the CPU.
    """

    batch_size: int = 16
    base_lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 100
    decay_steps: int = 1000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    max_grad_norm: float = 1.0
    max_steps: int | None = 1000
    max_minutes: float | None = 5.0
    eval_every: int = 100
    eval_tokens: int | None = 65536
    save_every: int = 500
    seed: int = 0
    bf16_autocast: bool = False
    # objective options (storylab.transformer.options)
    aux_loss_weight: float = 0.01  # weight of the mixture-of-experts load-balancing loss (Switch's alpha)
    output_rule: str | None = None  # a registered restricted-output rule ("addition"): loss over valid tokens only
    mask_rate: float = 0.15  # share of positions a masked LM is trained to fill (BERT's 80/10/10 split)

    def __post_init__(self) -> None:
        check_int("batch_size", self.batch_size, minimum=1)
        for name in ("base_lr", "min_lr", "weight_decay", "beta1", "beta2", "max_grad_norm"):
            check_number(name, getattr(self, name))
        if self.min_lr > self.base_lr:
            raise ValueError(f"min_lr: expected <= base_lr={self.base_lr}, got {self.min_lr}")
        for name in ("warmup_steps", "decay_steps"):
            check_int(name, getattr(self, name))
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"beta1/beta2: expected values in [0, 1), got {self.beta1}, {self.beta2}")
        if self.max_steps is None and self.max_minutes is None:
            raise ValueError("max_steps: set max_steps, max_minutes or both (both are None)")
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, minimum=1)
        if self.max_minutes is not None:
            check_number("max_minutes", self.max_minutes, strict=True)
        for name in ("eval_every", "save_every"):
            check_int(name, getattr(self, name), minimum=1)
        if self.eval_tokens is not None:
            check_int("eval_tokens", self.eval_tokens, minimum=1)
        check_int("seed", self.seed)
        check_train_options(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return _from_dict(cls, data)


def configs_from_params(values: dict, d_vocab: int | None = None) -> tuple[ModelConfig, TrainConfig]:
    """`(ModelConfig, TrainConfig)` from a notebook's parameters (or any dict, e.g. `globals()`).

    Every key that names a field of either config is used; other keys (corpus, prompts,
    ...) are ignored, and a field not given keeps its default. `d_vocab` is the
    tokenizer's `len(tokenizer)`.
    """
    if not isinstance(values, dict):
        raise ValueError(f"values: expected a dict of parameters, got {type(values).__name__}")
    model_fields = {f.name for f in fields(ModelConfig)}
    train_fields = {f.name for f in fields(TrainConfig)}
    model_config = ModelConfig(**{k: v for k, v in values.items() if k in model_fields})
    train_config = TrainConfig(**{k: v for k, v in values.items() if k in train_fields})
    return (model_config if d_vocab is None else model_config.with_vocab(d_vocab)), train_config
