"""The views of a fitted HMM that notebook 02 shows."""

import numpy as np
import pytest

from storylab.hmm import CategoricalHMM
from storylab.hmm_views import state_table, transition_order, transition_view


class Letters:
    def decode(self, ids):
        return "".join("abcd"[i] for i in ids)


def two_block_hmm():
    # states {0, 1} hand over to each other, as do {2, 3}; state 0 mostly emits token 0, ...
    trans = np.array([[.1, .9, 0, 0], [.9, .1, 0, 0], [0, 0, .2, .8], [0, 0, .8, .2]]) * .98 + .005
    emit = np.eye(4) * .7 + .075
    return CategoricalHMM.from_params(np.full(4, .25), trans / trans.sum(1, keepdims=True), emit, device="cpu")


def test_occupancy_sums_to_one_and_follows_the_emitted_tokens():
    hmm = two_block_hmm()
    seqs = [np.array([0, 0, 0, 0, 1]), np.array([0, 0, 0])]
    occupancy = hmm.occupancy(seqs)
    assert abs(occupancy.sum() - 1) < 1e-12
    by_hand = sum(hmm.posteriors(s).sum(axis=0) for s in seqs)  # one sequence at a time
    assert np.allclose(occupancy, by_hand / by_hand.sum(), atol=1e-6)
    assert occupancy[0] > occupancy[2] and occupancy[0] > occupancy[3]


def test_state_table_lists_states_by_occupancy_with_their_top_tokens():
    hmm = two_block_hmm()
    table = state_table(hmm, Letters(), np.array([.1, .4, .3, .2]), top_tokens=2)
    assert list(table["state"]) == [1, 2, 3, 0]
    assert table.loc[0, "top tokens"].startswith("'b' 0.77, ")


def test_transition_order_keeps_blocks_together():
    order = list(transition_order(two_block_hmm()))
    assert sorted(order) == [0, 1, 2, 3] and abs(order.index(0) - order.index(1)) == 1 and abs(order.index(2) - order.index(3)) == 1


def test_transition_view_pools_large_models_into_groups_whose_rows_sum_to_one():
    from storylab.hmm import CategoricalHMM

    hmm = CategoricalHMM(10, 4, seed=0, device="cpu")
    full, labels, _ = transition_view(hmm)
    order = transition_order(hmm)
    assert np.array_equal(labels, order) and np.allclose(full, hmm.trans.numpy()[np.ix_(order, order)])
    pooled, starts, what = transition_view(hmm, max_states=4)  # groups of 3, 3, 3 and 1 states
    trans = hmm.trans.double().numpy()
    assert starts.tolist() == [0, 3, 6, 9] and pooled.shape == (4, 4) and "groups of 3" in what
    assert pooled[1, 2] == pytest.approx(trans[3:6, 6:9].sum(axis=1).mean())
    assert pooled[3, 0] == pytest.approx(trans[9, 0:3].sum())
    assert np.allclose(pooled.sum(axis=1), 1.0)
