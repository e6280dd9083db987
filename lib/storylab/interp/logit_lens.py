"""The logit lens: decode the residual stream at every layer through the final norm and `W_U`.

At the last point (after the final block) this is exactly the model's own prediction; at
earlier points it shows how much of the answer the stream already holds. The final norm is
applied afresh to each layer's residual (`bridge.ln_final`), not with the scale cached from
the last layer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from storylab.interp.activations import ResidualSample, collect_residuals

CHUNK = 4096  # positions decoded at once: bounds the (chunk, d_vocab) logits


@torch.no_grad()
def decode_residual(bridge, resid: torch.Tensor) -> torch.Tensor:
    """Logits (…, d_vocab) of residual vectors (…, d_model) through `ln_final` and the unembedding."""
    device = bridge.W_E.device
    return bridge.ln_final(resid.to(device)) @ bridge.W_U + bridge.b_U


@torch.no_grad()
def logit_lens_loss(bridge, sample: ResidualSample) -> pd.DataFrame:
    """Mean next-token loss (nats) when decoding each residual point, over the positions that have a next token."""
    scored = torch.as_tensor(sample.next_ids >= 0)
    targets = torch.as_tensor(sample.next_ids[sample.next_ids >= 0])
    if len(targets) == 0:
        raise ValueError("sample: no position has a next token to score (sequences of one token)")
    rows = []
    for point, label in enumerate(sample.labels):
        resid = sample.resid[point][scored]
        total = 0.0
        for start in range(0, len(targets), CHUNK):
            logits = decode_residual(bridge, resid[start : start + CHUNK]).float()
            total += float(F.cross_entropy(logits, targets[start : start + CHUNK].to(logits.device), reduction="sum"))
        rows.append({"point": point, "label": label, "loss_nats": total / len(targets)})
    return pd.DataFrame(rows)


@torch.no_grad()
def logit_lens_top1(bridge, tokenizer, prompt_ids) -> pd.DataFrame:
    """The top-1 decoded token at each residual point (rows) and prompt position (columns)."""
    from storylab.interp.tokens import token_label

    prompt_ids = np.asarray(prompt_ids, dtype=np.int64)
    sample = collect_residuals(bridge, [prompt_ids])
    top = decode_residual(bridge, sample.resid).argmax(dim=-1).cpu().numpy()  # (L + 1, T)
    columns = [f"{i}:{token_label(tokenizer, t)}" for i, t in enumerate(prompt_ids)]
    return pd.DataFrame([[token_label(tokenizer, t) for t in row] for row in top], index=sample.labels, columns=columns)
