"""The learning-rate schedule: linear warm-up, cosine decay to `min_lr`, then constant."""

from __future__ import annotations

import math


def learning_rate(step: int, base_lr: float, min_lr: float, warmup_steps: int, decay_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based).

    Rises linearly over `warmup_steps` to `base_lr` (step 0 already gets
    base_lr / warmup_steps, so no step is wasted at zero), then follows half a cosine
    down to `min_lr` over the next `decay_steps`, and stays there.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= warmup_steps + decay_steps:
        return min_lr
    progress = (step - warmup_steps) / decay_steps
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
