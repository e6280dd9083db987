"""The architecture options inside TransformerLens 4: which parts its native model lacks, and how they go in.

What TransformerLens 4.3's `NativeModel` (the model `to_bridge` loads storylab's weights
into) covers, checked against its source:

- `objective="masked"`: yes — `attention_dir="bidirectional"` drops the causal mask.
- `attention="topk"`: no attention rule but softmax. Its `AttentionBridge` wraps any
  attention module that takes a `pattern_fn` and returns `(output, pattern)` and runs
  `hook_pattern` inside the computation, so `TopKNativeAttention` (a `NativeAttention`
  with the top-k rule, the pattern dense with zeros outside the top k) takes the place
  of the native one and every attention hook keeps its name and meaning.
- `mlp="moe"`: `NativeModel` has only dense and gated MLPs, but TransformerLens bridges
  MoE models (Mixtral, Qwen-MoE, ...) with `MoEBridge` around the MoE block and
  `MoERouterBridge` around a router returning `(logits, weights, indices)`. storylab's
  `MixtureOfExperts` has that router, so it goes into the native block as it is and the
  native adapter's MLP slot is remapped to those two bridges (`moe_component`), giving
  `blocks.{i}.mlp.hook_in/hook_out` (`hook_pre/hook_post`), the router's
  `blocks.{i}.mlp.gate.hook_out` (router logits) and `blocks.{i}.mlp.hook_expert_weights`
  (tokens × experts, zero for experts not chosen) / `hook_expert_indices`.

So every option opens as a real `TransformerBridge`; no option needs hand-made hook points.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from transformer_lens.model_bridge.generalized_components import MoEBridge, MoERouterBridge
from transformer_lens.model_bridge.sources.native.model import NativeAttention, NativeModel

from storylab.transformer.config import ModelConfig
from storylab.transformer.model import MLP
from storylab.transformer.moe import MixtureOfExperts
from storylab.transformer.sparse_attention import topk_pattern


class TopKNativeAttention(NativeAttention):
    """TransformerLens's native attention with storylab's top-k rule (see `sparse_attention`)."""

    def __init__(self, cfg, top_k: int):
        super().__init__(cfg)
        self.top_k = top_k

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        pattern_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, seq, _ = hidden_states.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, seq, self.n_heads, self.d_head).transpose(1, 2)

        q, k, v = heads(self.q(hidden_states)), heads(self.k(hidden_states)), heads(self.v(hidden_states))
        scores = (q @ k.transpose(-2, -1)) / self.scale
        if self.causal:
            masked = self.causal_mask[:seq, :seq]
        else:
            masked = torch.zeros(seq, seq, dtype=torch.bool, device=scores.device)
        if attention_mask is not None:
            masked = self._combine_attention_mask(masked, attention_mask, batch=batch)
        # fully masked (padding) rows would softmax to NaN: zero them, as the native attention does
        pattern = topk_pattern(scores.masked_fill(masked, float("-inf")), self.top_k).masked_fill(masked, 0.0)
        if pattern_fn is not None:
            pattern = pattern_fn(pattern)
        z = (pattern @ v).transpose(1, 2).reshape(batch, seq, -1)
        return self.o(z), pattern


def native_model(tl_cfg, config: ModelConfig) -> NativeModel:
    """TransformerLens's native model with storylab's option modules in place of the native ones."""
    native = NativeModel(tl_cfg)
    for block in native.layers:
        if config.attention == "topk":
            block.attn = TopKNativeAttention(tl_cfg, config.attention_k)
        if config.mlp == "moe":
            block.mlp = MixtureOfExperts(config, MLP)
    return native


def moe_component(adapter) -> None:
    """Remap the native adapter's MLP slot to TransformerLens's MoE bridges (a `post_adapter_hook`)."""
    blocks = adapter.component_mapping["blocks"]
    blocks.submodules["mlp"] = MoEBridge(name="mlp", config=adapter.cfg,
                                         submodules={"gate": MoERouterBridge(name="router")})
