"""What notebook 02 shows of a fitted HMM: each state's top tokens, and a clustered order of states.

    occupancy = hmm.occupancy(exp.validation)                # CategoricalHMM's own, batched
    state_table(hmm, tokenizer, occupancy, top_tokens=8)   # one row per state, most used first
    order = transition_order(hmm)                            # groups of states that hand over to each other
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storylab.interp.embeddings import token_order


MAX_CLUSTERED_STATES = 1024  # average linkage is O(K³): beyond this, states keep their (block) order


def state_table(hmm, tokenizer, occupancy: np.ndarray, top_tokens: int = 8) -> pd.DataFrame:
    """One row per state, most used first: its occupancy and its most likely tokens with their probabilities."""
    emit = hmm.emit.detach().cpu().numpy()
    top = np.argsort(-emit, axis=1, kind="stable")[:, :top_tokens]
    rows = [{"state": k, "occupancy": round(float(occupancy[k]), 4),
             "top tokens": ", ".join(f"{tokenizer.decode([int(t)])!r} {emit[k, t]:.2f}" for t in top[k])}
            for k in range(hmm.n_states)]
    return pd.DataFrame(rows).sort_values("occupancy", ascending=False, kind="stable").reset_index(drop=True)


def transition_order(hmm) -> np.ndarray:
    """States in hierarchical-clustering order of their transition rows (blocks on the diagonal);
    past `MAX_CLUSTERED_STATES` states, their own order (a blocked model's states come in blocks)."""
    if hmm.n_states > MAX_CLUSTERED_STATES:
        return np.arange(hmm.n_states)
    return token_order(hmm.trans.detach().cpu(), order="cluster")
