"""The transformer storylab trains: a plain PyTorch decoder with fused attention.

Training pays for nothing it does not use: attention is `scaled_dot_product_attention`
and there are no hook points. For analysis the same weights are loaded into
TransformerLens's native model and wrapped in a `TransformerBridge` (`bridge.py`), so
the parameter names and shapes here copy that model's (`tok_embed`, `pos`,
`layers.{i}.ln1|attn.q|k|v|o|ln2|mlp.fc_in|fc_out`, `ln_out`, `head`) and the forward
pass computes the same function: pre-norm blocks, learned positions, biases on every
attention and MLP projection, an untied unembedding without bias.

The architecture options of `ModelConfig` swap one part each: `attention="topk"` the
attention rule (`sparse_attention`), `mlp="moe"` the MLP for a routed mixture of MLPs
(`moe`), `objective="masked"` drops the causal mask. The default model is unchanged by
them: same parameters, same initialisation, same fused attention call.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from storylab.transformer.config import ModelConfig
from storylab.transformer.moe import MixtureOfExperts
from storylab.transformer.sparse_attention import topk_attention

_ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's tanh approximation
    "relu": F.relu,
    "silu": F.silu,
}


class RMSNorm(nn.Module):
    """RMSNorm with a learned scale, computed in float32 as the TL-native model does."""

    def __init__(self, d_model: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_fp32 = x.float()
        normalized = x_fp32 * torch.rsqrt(x_fp32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * normalized.to(x.dtype)


def make_norm(config: ModelConfig) -> nn.Module:
    if config.normalization == "LN":
        return nn.LayerNorm(config.d_model, eps=config.eps)
    if config.normalization == "RMS":
        return RMSNorm(config.d_model, eps=config.eps)
    return nn.Identity()


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads, self.d_head = config.n_heads, config.d_head
        inner = config.n_heads * config.d_head
        self.q = nn.Linear(config.d_model, inner)
        self.k = nn.Linear(config.d_model, inner)
        self.v = nn.Linear(config.d_model, inner)
        self.o = nn.Linear(inner, config.d_model)
        self.causal = config.objective == "causal"
        self.top_k = config.attention_k if config.attention == "topk" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, seq, self.n_heads, self.d_head).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        if self.top_k is None:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            z = topk_attention(q, k, v, self.top_k, causal=self.causal)
        return self.o(z.transpose(1, 2).reshape(batch, seq, -1))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.d_model, config.d_mlp)
        self.fc_out = nn.Linear(config.d_mlp, config.d_model)
        self.act = _ACTIVATIONS[config.act_fn]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act(self.fc_in(x)))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln1 = make_norm(config)
        self.attn = Attention(config)
        self.ln2 = make_norm(config)
        self.mlp = MixtureOfExperts(config, MLP) if config.mlp == "moe" else MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class StoryTransformer(nn.Module):
    """`model(input_ids [batch, seq]) -> logits [batch, seq, d_vocab]`."""

    def __init__(self, config: ModelConfig, seed: int = 0):
        super().__init__()
        if config.d_vocab is None:
            raise ValueError("config.d_vocab: expected the vocabulary size (len(tokenizer)), got None")
        self.config = config
        self.tok_embed = nn.Embedding(config.d_vocab, config.d_model)
        self.pos = nn.Embedding(config.n_ctx, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_out = make_norm(config)
        self.head = nn.Linear(config.d_model, config.d_vocab, bias=False)
        self.init_weights(seed)

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """GPT-2 initialisation from a private generator, so `seed` alone fixes the weights.

        Matrices ~ N(0, 0.02), the two projections that write into the residual stream
        scaled by 1/sqrt(2 n_layers) (so the stream's variance does not grow with depth),
        biases 0, norm scales 1.
        """
        generator = torch.Generator().manual_seed(seed)
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layers)
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                param.zero_()
            elif param.ndim == 1:
                param.fill_(1.0)
            else:
                std = residual_std if name.endswith(("attn.o.weight", "fc_out.weight")) else 0.02  # MoE experts too
                param.copy_(torch.randn(param.shape, generator=generator) * std)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        if seq > self.config.n_ctx:
            raise ValueError(f"input_ids: length {seq} exceeds the model's n_ctx={self.config.n_ctx}")
        x = self.tok_embed(input_ids) + self.pos.weight[:seq]
        for block in self.layers:
            x = block(x)
        return self.head(self.ln_out(x))

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
