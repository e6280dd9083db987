"""A mixture-of-experts MLP: a learned router sends each token to its top experts.

Switch Transformer (Fedus et al. 2022) with `experts_per_token=1`, GShard / Mixtral-style
top-k with more: the router's softmax `p` over `n_experts` picks each token's
`experts_per_token` most likely experts, and the token's output is the sum of those
experts' MLP outputs weighted by their router probabilities (as in Switch, not
renormalised, so the router learns from the main loss for any k). One expert is then
exactly the dense MLP: its probability is 1.

The load-balancing loss is Switch's: `n_experts * sum_i f_i * P_i`, with `f_i` the share
of routing assignments that went to expert i and `P_i` the mean router probability of
expert i over the tokens. It is 1 when the router is uniform (`P_i = 1/n_experts`, for any
assignment) or the load is (`f_i = 1/n_experts`), and `n_experts` when every token goes
to one expert with certainty. `train` adds `aux_loss_weight` times its mean over the MoE
layers to the loss and logs it with the load per expert (`f`) at every step.

Every MoE layer keeps its last forward's `aux_loss` and `load`, which `moe_aux_loss`
and `moe_expert_load` collect, so the model's `forward` stays `ids -> logits`.

The router returns `(logits, weights, indices)`, the tuple TransformerLens's
`MoERouterBridge` wraps, so the same module runs inside the TransformerLens bridge
(`bridge.py`) with the hooks `blocks.{i}.mlp.hook_expert_weights` / `hook_expert_indices`.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn


class Router(nn.Module):
    """`x (…, d_model) -> (logits (…, E), weights (…, k), indices (…, k))`: the top-k experts and their probabilities."""

    def __init__(self, d_model: int, n_experts: int, experts_per_token: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_experts, d_model))
        self.experts_per_token = experts_per_token

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = x @ self.weight.T
        weights, indices = logits.float().softmax(dim=-1).topk(self.experts_per_token, dim=-1)
        return logits, weights.to(x.dtype), indices


def load_balancing_loss(router_probs: torch.Tensor, indices: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Switch's auxiliary loss `n_experts * sum_i f_i P_i` from probs (N, E) and chosen experts (N, k)."""
    counts = torch.zeros(n_experts, device=indices.device, dtype=torch.float32)
    counts.scatter_add_(0, indices.flatten(), torch.ones(indices.numel(), device=indices.device))
    load = counts / indices.numel()
    return n_experts * (load * router_probs.float().mean(dim=0)).sum()


class MixtureOfExperts(nn.Module):
    """`n_experts` copies of the MLP (`make_expert(config)`) behind a `Router`."""

    def __init__(self, config, make_expert):
        super().__init__()
        self.n_experts, self.experts_per_token = config.n_experts, config.experts_per_token
        self.experts = nn.ModuleList(make_expert(config) for _ in range(config.n_experts))
        self.router = Router(config.d_model, config.n_experts, config.experts_per_token)
        self.aux_loss: torch.Tensor | None = None
        self.load: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        logits, weights, indices = self.router(flat)
        weights, indices = weights.reshape(-1, indices.shape[-1]), indices.reshape(-1, indices.shape[-1])
        self.aux_loss = load_balancing_loss(logits.float().softmax(dim=-1).reshape(-1, self.n_experts), indices,
                                            self.n_experts)
        self.load = torch.bincount(indices.flatten(), minlength=self.n_experts).detach() / indices.numel()
        out = torch.zeros_like(flat)
        for expert_id, expert in enumerate(self.experts):
            token, slot = torch.where(indices == expert_id)
            if len(token):
                out.index_add_(0, token, expert(flat[token]) * weights[token, slot, None])
        return out.reshape(shape)


def moe_layers(model: nn.Module) -> list[MixtureOfExperts]:
    return [module for module in model.modules() if isinstance(module, MixtureOfExperts)]


def moe_aux_loss(model: nn.Module) -> torch.Tensor | None:
    """Mean load-balancing loss of the MoE layers' last forward pass (None for a dense model)."""
    layers = moe_layers(model)
    if not layers:
        return None
    return torch.stack([layer.aux_loss for layer in layers]).mean()


def moe_expert_load(model: nn.Module) -> list[list[float]]:
    """Share of routing assignments per expert, per MoE layer, in the last forward pass."""
    return [[round(float(share), 6) for share in layer.load.cpu()] for layer in moe_layers(model)]


def mlp_params(d_model: int, d_mlp: int) -> int:
    return 2 * d_model * d_mlp + d_mlp + d_model  # fc_in and fc_out with biases


def active_params(config) -> int:
    """Parameters a token passes through: all of them for a dense model, for MoE its k experts and the router.

    Embeddings, positions and the unembedding count in full, as in `n_params`, so a dense
    model's `active_params` is its `n_params` (the vocabulary counts once `d_vocab` is set).
    """
    d, total = config.d_model, 0
    per_layer_attention = 4 * (d * config.n_heads * config.d_head) + 3 * config.n_heads * config.d_head + d
    norms = {"LN": 2 * d, "RMS": d, None: 0}[config.normalization]
    if config.mlp == "moe":
        per_layer_mlp = config.experts_per_token * mlp_params(d, config.d_mlp) + config.n_experts * d
    else:
        per_layer_mlp = mlp_params(d, config.d_mlp)
    total += config.n_layers * (per_layer_attention + per_layer_mlp + 2 * norms) + norms
    total += (config.d_vocab or 0) * d * 2 + config.n_ctx * d  # embedding, unembedding, positions
    return total


def equal_active_moe(config, n_experts: int, experts_per_token: int = 1):
    """An MoE version of the dense `config` whose tokens pass through as many parameters.

    Each expert's width `d_mlp` is chosen so that `experts_per_token` experts plus the
    router match the dense MLP's parameters per layer as closely as an integer width allows
    (`active_params` of both then differ by less than `experts_per_token * (2 d_model + 1)`).
    """
    if config.mlp != "dense":
        raise ValueError(f"config: expected a dense-MLP config to match, got mlp={config.mlp!r}")
    moe = replace(config, mlp="moe", n_experts=n_experts, experts_per_token=experts_per_token)  # checks both
    d = config.d_model
    target = mlp_params(d, config.d_mlp) - n_experts * d - experts_per_token * d  # the experts' weights and fc_in biases
    width = round(target / (experts_per_token * (2 * d + 1)))
    if width < 1:
        raise ValueError(f"n_experts: {n_experts} experts' router alone outweighs the dense MLP (d_mlp={config.d_mlp})")
    return replace(moe, d_mlp=width)
