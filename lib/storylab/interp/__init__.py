"""Interpretability of storylab transformers, through TransformerLens 4 objects.

Every analysis takes a `TransformerBridge` (`storylab.transformer.load_run` / `to_bridge`)
and returns data — tensors or DataFrames — that `storylab.plots_interp` draws, so a
researcher can continue from the same bridge, hook names and `FactoredMatrix` circuits.

- `embeddings`: cosine similarity of `W_E` / `W_U` rows, block-averaged views, token
  orders (frequency, clustering), nearest neighbours
- `circuits`: QK / OV circuits per head, copying scores, positional QK
- `attention`: attention patterns; previous-token, first-token and induction scores;
  loss on repeated random tokens
- `activations`: story token sequences and the residual stream at every layer
- `residual`: PCA of the residual stream
- `logit_lens`: per-layer loss and top-1 predictions through the final norm and `W_U`
- `probes`: ridge probes (R², shuffled baseline), linear classifiers, simplex coordinates
- `story_probes`: what the story generator knows at each position (hero's gender, toy, arc,
  pet, open quote) as probe targets, and probes for them with a shuffled baseline
- `hmm_link`: belief-state and Viterbi targets from HMMs; `tokens`: labels, classes, id maps
- `routing`: mixture-of-experts models: which expert each token is routed to (token × expert table);
  `attention.pattern_sparsity`: how many keys each head uses (top-k attention)
"""

from storylab.interp.activations import ResidualSample, collect_residuals, resid_hook_names, story_sequences
from storylab.interp.attention import (
    attention_patterns,
    first_token_scores,
    head_scores,
    induction_scores,
    pattern_sparsity,
    per_token_loss,
    previous_token_scores,
    repeated_random_tokens,
    repeated_token_loss,
)
from storylab.interp.circuits import (
    circuit_summary,
    copying_score,
    diagonal_top1_accuracy,
    ov_circuit,
    positional_qk,
    qk_circuit,
)
from storylab.interp.embeddings import coarse_grain, cosine_similarity_matrix, nearest_neighbours, token_order
from storylab.interp.hmm_link import BeliefProbes, belief_probes, belief_targets, true_hmm, viterbi_probes, viterbi_targets
from storylab.interp.logit_lens import decode_residual, logit_lens_loss, logit_lens_top1
from storylab.interp.probes import (
    classifier_probe,
    classifier_probe_layers,
    fit_ridge,
    probe_layers,
    r_squared,
    ridge_probe,
    simplex_xy,
    split_by_sequence,
)
from storylab.interp.residual import PCA, pca, residual_pca
from storylab.interp.routing import expert_assignments, expert_token_table, routing_weights
from storylab.interp.story_probes import (MIN_TEST_POSITIONS, STORY_VARIABLES, story_probe_targets, story_variable_labels,
                                          story_variable_probes)
from storylab.interp.run_inputs import check_same_tokenizer, run_corpus_spec
from storylab.interp.summary import interp_summary
from storylab.interp.tokens import alphabet_id_map, single_token_ids, special_ids, token_class, token_classes, token_label, token_labels

__all__ = [
    "PCA", "ResidualSample", "alphabet_id_map", "attention_patterns", "BeliefProbes", "belief_probes", "belief_targets", "check_same_tokenizer", "circuit_summary",
    "classifier_probe", "classifier_probe_layers", "coarse_grain", "collect_residuals", "copying_score",
    "cosine_similarity_matrix", "decode_residual", "diagonal_top1_accuracy", "first_token_scores",
    "fit_ridge", "head_scores", "induction_scores", "interp_summary", "logit_lens_loss", "logit_lens_top1", "nearest_neighbours",
    "ov_circuit", "pca", "per_token_loss", "positional_qk", "previous_token_scores", "probe_layers", "qk_circuit",
    "r_squared", "repeated_random_tokens", "repeated_token_loss", "resid_hook_names", "residual_pca", "ridge_probe",
    "run_corpus_spec", "simplex_xy", "single_token_ids", "special_ids", "split_by_sequence", "STORY_VARIABLES", "story_probe_targets",
    "story_sequences", "story_variable_labels", "story_variable_probes", "token_class",
    "token_classes", "token_label", "token_labels", "token_order", "true_hmm", "viterbi_probes", "viterbi_targets",
    "pattern_sparsity", "routing_weights", "expert_assignments", "expert_token_table", "MIN_TEST_POSITIONS",
]
