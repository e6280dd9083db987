"""storylab.interp on tiny models whose answers are known: hand-set attention heads, linear
images of beliefs, block-constant matrices, low-rank data, and the logit lens's last layer."""

import json
import math
from datetime import datetime, timezone

import numpy as np
import pytest
import torch
import yaml
from transformer_lens import FactoredMatrix

from storylab import interp
from storylab.hmm import CategoricalHMM
from storylab.tokenizers import train_tokenizer
from storylab.transformer import ModelConfig, StoryTransformer, to_bridge

TEXTS = ["Once upon a time, Lily ran.", "Tim sat. The dog ran to Tim.", "cab bac abc."] * 3
N_CTX = 12


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer("char", TEXTS)


@pytest.fixture(scope="module")
def random_bridge(tokenizer):
    config = ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32, n_ctx=N_CTX).with_vocab(len(tokenizer))
    return to_bridge(StoryTransformer(config, seed=0).eval(), tokenizer)


def attention_only_model(tokenizer, query_weight=None, scale=10.0):
    """One layer, one head, no norms; positions one-hot; tokens and MLP silent.

    With `query_weight=None` the query is zero, so attention is uniform over the past. The
    default hand-set head has key = scale·position and query(i) = scale·e_{i−1}, so position i
    scores scale² on key i−1 and 0 elsewhere: a previous-token head.
    """
    config = ModelConfig(n_layers=1, d_model=N_CTX, n_heads=1, d_mlp=4, n_ctx=N_CTX, normalization=None, d_vocab=len(tokenizer))
    model = StoryTransformer(config)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        model.pos.weight.copy_(torch.eye(N_CTX))
        model.layers[0].attn.k.weight.copy_(scale * torch.eye(N_CTX))
        if query_weight is None:
            query_weight = torch.zeros(N_CTX, N_CTX)
            for i in range(1, N_CTX):
                query_weight[i - 1, i] = scale  # output coordinate i−1 reads input coordinate i
        model.layers[0].attn.q.weight.copy_(query_weight)
    return to_bridge(model.eval(), tokenizer)


# --- embeddings ------------------------------------------------------------------------

def test_identical_rows_have_similarity_one_and_are_each_others_nearest_neighbour():
    vectors = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    vectors[4] = 3 * vectors[1]  # same direction, different length
    similarity = interp.cosine_similarity_matrix(vectors)
    assert similarity[1, 4] == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(similarity.diagonal(), torch.ones(6), atol=1e-6)
    table = interp.nearest_neighbours(vectors, [1, 4], labels=list("abcdef"), k=2)
    assert table["#1"].tolist() == ["e (1.00)", "b (1.00)"]


def block_constant(values, sizes):
    index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    matrix = values[index][:, index].clone()
    matrix.fill_diagonal_(1.0)  # self-similarity, which the coarse view leaves out
    return matrix


@pytest.mark.parametrize("sizes", [[3, 3, 3], [2, 3, 2]])  # 7 tokens in 3 blocks: edges 0, 2, 5, 7
def test_coarse_grain_of_a_block_constant_matrix_returns_the_block_values(sizes):
    values = torch.tensor([[0.9, -0.2, 0.1], [-0.2, 0.5, 0.3], [0.1, 0.3, 0.7]])
    matrix = block_constant(values, sizes)
    assert torch.allclose(interp.coarse_grain(matrix, n_blocks=3), values, atol=1e-6)
    with_diagonal = interp.coarse_grain(matrix, n_blocks=3, exclude_diagonal=False)
    assert with_diagonal[0, 0] == pytest.approx((sizes[0] * (sizes[0] - 1) * 0.9 + sizes[0]) / sizes[0] ** 2)


def test_token_order_by_frequency_and_by_clusters():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.99, 0.05], [0.02, 1.0]])
    assert interp.token_order(vectors, frequencies=[5, 9, 1, 7]).tolist() == [1, 3, 0, 2]
    order = interp.token_order(vectors, order="cluster").tolist()
    position = {token: i for i, token in enumerate(order)}
    assert abs(position[0] - position[2]) == 1 and abs(position[1] - position[3]) == 1


@pytest.mark.parametrize("call, name", [
    (lambda: interp.coarse_grain(torch.eye(4), n_blocks=0), "n_blocks"),
    (lambda: interp.coarse_grain(torch.ones(3, 4), n_blocks=1), "matrix"),
    (lambda: interp.token_order(torch.eye(3), order="alphabet"), "order"),
    (lambda: interp.token_order(torch.eye(3), frequencies=None), "frequencies"),
    (lambda: interp.split_by_sequence(np.zeros(5), 0.5), "sequence_index"),
    (lambda: interp.pca(torch.ones(1, 3)), "vectors"),
])
def test_bad_input_is_a_one_line_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        call()


# --- circuits ----------------------------------------------------------------------------

def test_copying_score_and_diagonal_accuracy_of_known_circuits():
    eye = torch.eye(5)
    assert interp.copying_score(FactoredMatrix(eye, eye)) == pytest.approx(1.0)
    assert interp.copying_score(FactoredMatrix(-eye, eye)) == pytest.approx(-1.0)
    assert interp.diagonal_top1_accuracy(FactoredMatrix(eye, eye)) == 1.0
    shifted = torch.roll(eye, 1, dims=1)
    assert interp.diagonal_top1_accuracy(FactoredMatrix(eye, shifted)) == 0.0


def test_ov_circuit_is_the_product_of_the_bridge_weights(random_bridge):
    b = random_bridge
    expected = b.W_E @ b.W_V[1, 0] @ b.W_O[1, 0] @ b.W_U
    assert torch.allclose(interp.ov_circuit(b, 1, 0).AB, expected, atol=1e-6)
    summary = interp.circuit_summary(b)
    assert len(summary) == 4 and summary["ov_copying_score"].between(-1, 1).all()
    with pytest.raises(ValueError, match="^layer"):
        interp.qk_circuit(b, 2, 0)


def test_hand_set_previous_token_head_scores_one(tokenizer):
    bridge = attention_only_model(tokenizer)
    sequences = interp.story_sequences(tokenizer, TEXTS, N_CTX)
    scores = interp.head_scores(bridge, tokenizer, sequences, half_len=4, batch=3)
    assert scores["prev_token_score"].item() > 0.99
    # only query 1 looks at position 0, which is its previous token: 1 of the 11 scored queries
    assert scores["first_token_score"].item() == pytest.approx(1 / (N_CTX - 1), abs=1e-3)
    positional = interp.positional_qk(bridge, 0, 0)
    assert torch.nanmean(positional, dim=1).shape == (N_CTX,)
    assert [int(torch.nan_to_num(row, nan=-1e9).argmax()) for row in positional[1:]] == list(range(N_CTX - 1))


def test_uniform_attention_gives_the_exact_first_and_previous_token_scores(tokenizer):
    bridge = attention_only_model(tokenizer, query_weight=torch.zeros(N_CTX, N_CTX))
    tokens = interp.repeated_random_tokens(tokenizer, half_len=5, batch=2)  # 11 tokens
    patterns = interp.attention_patterns(bridge, tokens)
    expected = np.mean([1 / (i + 1) for i in range(1, 11)])
    assert interp.first_token_scores(patterns).item() == pytest.approx(expected, rel=1e-5)
    assert interp.previous_token_scores(patterns).item() == pytest.approx(expected, rel=1e-5)


def test_induction_score_reads_the_token_after_the_earlier_occurrence():
    n = 4
    length = 1 + 2 * n
    perfect = torch.zeros(1, 1, 2, length, length)
    for query in range(length):
        perfect[0, 0, :, query, 0] = 1.0
    for j in range(n):
        query = 1 + n + j
        perfect[0, 0, 0, query] = 0
        perfect[0, 0, 0, query, 2 + j] = 1.0  # head 0: induction; head 1 stays on the first token
    scores = interp.induction_scores(perfect, n)
    assert scores.tolist() == [[1.0, 0.0]]
    with pytest.raises(ValueError, match="^half_len"):
        interp.induction_scores(perfect, n + 1)


def test_repeated_random_tokens_repeat_and_avoid_special_tokens(tokenizer):
    tokens = interp.repeated_random_tokens(tokenizer, half_len=6, batch=3, seed=1)
    assert tokens.shape == (3, 13) and (tokens[:, 0] == tokenizer.eos_token_id).all()
    assert torch.equal(tokens[:, 1:7], tokens[:, 7:])
    assert not set(tokens[:, 1:].flatten().tolist()) & set(interp.special_ids(tokenizer))


# --- residual stream, PCA, logit lens ----------------------------------------------------

def test_collect_residuals_matches_the_cache_of_each_sequence(random_bridge, tokenizer):
    sequences = interp.story_sequences(tokenizer, TEXTS[:3], N_CTX)
    short = [sequences[0][:5], sequences[1]]  # unequal lengths: padding must not leak in
    sample = interp.collect_residuals(random_bridge, short)
    assert sample.resid.shape == (3, 5 + len(sequences[1]), 16)
    _, cache = random_bridge.run_with_cache(torch.as_tensor(short[0])[None])
    assert torch.allclose(sample.resid[2, :5], cache["blocks.1.hook_resid_post"][0], atol=1e-5)
    assert sample.next_ids[4] == -1 and sample.positions[5] == 0 and sample.sequence_index[5] == 1


def test_pca_explained_variance_sums_to_at_most_one_and_finds_the_rank():
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(200, 3, generator=generator) @ torch.randn(3, 10, generator=generator) + 5
    result = interp.pca(data, n_components=6)
    ratios = result.explained_variance_ratio
    assert ratios.sum() <= 1 + 1e-6
    assert ratios[:3].sum() == pytest.approx(1.0, abs=1e-5) and ratios[3:].abs().max() < 1e-6
    assert torch.allclose(result.components @ result.components.T, torch.eye(6), atol=1e-5)


def test_logit_lens_at_the_last_layer_is_the_models_own_loss(random_bridge, tokenizer):
    sequences = interp.story_sequences(tokenizer, TEXTS[:4], N_CTX)
    sample = interp.collect_residuals(random_bridge, sequences)
    lens = interp.logit_lens_loss(random_bridge, sample)
    losses = [interp.per_token_loss(random_bridge, torch.as_tensor(s)).flatten() for s in sequences]
    assert lens["loss_nats"].iloc[-1] == pytest.approx(float(torch.cat(losses).mean()), rel=1e-5)
    assert len(lens) == 3
    top1 = interp.logit_lens_top1(random_bridge, tokenizer, sequences[0][:6])
    assert top1.shape == (3, 6)


# --- probes ----------------------------------------------------------------------------

def dirichlet_beliefs(n_sequences=40, length=15, seed=0):
    rng = np.random.default_rng(seed)
    beliefs = rng.dirichlet(np.ones(3), size=n_sequences * length)
    return beliefs, np.repeat(np.arange(n_sequences), length)


def test_probe_on_a_linear_image_of_beliefs_reaches_r2_one_and_shuffled_beliefs_zero():
    beliefs, sequence_index = dirichlet_beliefs()
    rng = np.random.default_rng(1)
    activations = beliefs @ rng.normal(size=(3, 16)) + 1e-3 * rng.normal(size=(len(beliefs), 16))
    noise = rng.normal(size=(len(beliefs), 16))
    resid = torch.tensor(np.stack([noise, activations]), dtype=torch.float32)
    table = interp.probe_layers(resid, beliefs, sequence_index)
    assert table["r2"].iloc[1] > 0.999
    assert abs(table["r2"].iloc[0]) < 0.1  # pure noise explains nothing held out
    assert abs(table["r2_shuffled"].iloc[1]) < 0.1


def test_classifier_probe_separates_linearly_separable_states_and_reports_the_majority():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 300 + [1] * 100 + [2] * 200)
    centres = rng.normal(size=(3, 8)) * 5
    x = torch.tensor(centres[labels] + rng.normal(size=(600, 8)) * 0.1, dtype=torch.float32)
    train, test = interp.split_by_sequence(np.arange(600) // 10, 0.25, seed=0)
    result = interp.classifier_probe(x, labels, train, test)
    assert result["accuracy"] == 1.0
    assert result["majority_baseline"] == pytest.approx(np.mean(labels[test] == 0))


def test_simplex_corners():
    xy = interp.simplex_xy(np.eye(3))
    assert np.allclose(xy, [[0, 0], [1, 0], [0.5, math.sqrt(3) / 2]])


# --- HMM targets ------------------------------------------------------------------------

ALPHABET = "cab"  # HMM token k prints as ALPHABET[k]; the char tokenizer sorts them as a, b, c


@pytest.fixture(scope="module")
def hmm_texts():
    return ["cabbac", "aabcc", "bbbacab"]


def test_alphabet_id_map_translates_tokenizer_ids_to_hmm_ids(hmm_texts):
    tokenizer = train_tokenizer("char", hmm_texts)
    mapping = interp.alphabet_id_map(tokenizer, ALPHABET)
    for text in hmm_texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert mapping[ids].tolist() == [ALPHABET.index(c) for c in text]
    assert mapping[tokenizer.eos_token_id] == -1
    with pytest.raises(ValueError, match="^tokenizer"):
        interp.alphabet_id_map(train_tokenizer("char", ["ab"]), "abc")


def test_belief_and_viterbi_targets_follow_each_story(hmm_texts):
    tokenizer = train_tokenizer("char", hmm_texts)
    hmm = CategoricalHMM.from_params([0.5, 0.3, 0.2], [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]],
                                     [[0.7, 0.2, 0.1], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7]], device="cpu")
    config = ModelConfig(n_layers=1, d_model=8, n_heads=1, d_mlp=8, n_ctx=N_CTX).with_vocab(len(tokenizer))
    bridge = to_bridge(StoryTransformer(config).eval(), tokenizer)
    sample = interp.collect_residuals(bridge, interp.story_sequences(tokenizer, hmm_texts, N_CTX))
    beliefs, mask = interp.belief_targets(hmm, sample, tokenizer, ALPHABET)
    expected = np.concatenate([hmm.beliefs([ALPHABET.index(c) for c in text]) for text in hmm_texts])
    assert np.allclose(beliefs, expected) and mask.sum() == sum(map(len, hmm_texts))
    assert not mask[sample.positions == 0].any()
    # a "natural text" HMM over the tokenizer's own ids: Viterbi after the leading end-of-text token
    text_hmm = CategoricalHMM(n_states=2, vocab_size=len(tokenizer), seed=0, device="cpu")
    states, mask = interp.viterbi_targets(text_hmm, sample)
    assert len(states) == mask.sum() == sum(len(t) + 1 for t in hmm_texts)
    assert np.array_equal(states[: len(hmm_texts[0]) + 1], text_hmm.viterbi(sample.token_ids[1 : len(hmm_texts[0]) + 2]))


# --- notebook 04 smoke run ---------------------------------------------------------------

def make_transformer_run(corpus, name="tiny", n_ctx=32, steps=15):
    """A finished 03_transformer run folder, as notebook 03 leaves it: the model in `model/`,
    params.yaml naming the corpus, status.json saying finished."""
    from storylab.corpora import load_corpus
    from storylab.paths import runs_dir
    from storylab.tokenizers import encode_corpus
    from storylab.transformer import TrainConfig, train

    folder = runs_dir() / "03_transformer" / name
    enc = encode_corpus(load_corpus(corpus), "char")
    train(ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32, n_ctx=n_ctx),
          TrainConfig(batch_size=8, max_steps=steps, warmup_steps=2, decay_steps=steps, eval_every=steps, eval_tokens=256,
                      save_every=steps),
          enc.train.stream(), enc.validation.stream(), folder / "model", tokenizer=enc.tokenizer, progress=False)
    (folder / "params.yaml").write_text(yaml.safe_dump({"corpus": corpus, "tokenizer": "char"}))
    (folder / "metrics.json").write_text(json.dumps({"model_path": "model"}))  # artifacts are recorded relative to the run
    ended = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (folder / "status.json").write_text(json.dumps({"status": "finished", "ended": ended}))
    return folder


SMOKE_KNOBS = {"n_val_stories": 12, "n_freq_stories": 50, "max_tokens_shown": 64, "n_blocks": 4, "circuit_tokens": 8, "positions_shown": 8,
               "induction_half_len": 6, "induction_batch": 2, "pca_components": 4}


def make_hmm_run(corpus, tokenizer, name="tiny_hmm"):
    """A finished 02_hmm run folder holding a (random, unfitted) HMM over the model's tokenizer."""
    from storylab.paths import runs_dir

    folder = runs_dir() / "02_hmm" / name
    CategoricalHMM(n_states=3, vocab_size=len(tokenizer), seed=0, device="cpu").save(folder / "hmm")
    (folder / "params.yaml").write_text(yaml.safe_dump({"corpus": corpus, "tokenizer": "char"}))
    (folder / "metrics.json").write_text(json.dumps({"hmm_path": "hmm"}))
    ended = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (folder / "status.json").write_text(json.dumps({"status": "finished", "ended": ended}))
    return folder


@pytest.mark.slow
def test_notebook_04_runs_on_a_tiny_mess3_model_with_an_hmm_run():
    from storylab.runner import run_notebook
    from storylab.transformer import load_run

    corpus = {"source": "mess3", "n_sequences": 120, "validation": 16, "length": 31}
    folder = make_transformer_run(corpus, steps=5)
    hmm_folder = make_hmm_run(corpus, load_run(folder)[1])
    knobs = {"model_run": str(folder), "hmm_run": str(hmm_folder), "prompt": "abcab", "neighbour_tokens": ["a", "ab"], **SMOKE_KNOBS}
    result = run_notebook("04_interpretability", knobs)
    status = json.loads((result.folder / "status.json").read_text())
    assert status["status"] == "finished", status.get("error")
    metrics = json.loads((result.folder / "metrics.json").read_text())
    assert len(metrics["logit_lens_loss_nats"]) == 3 and len(metrics["belief_probe_r2"]) == 3
    assert 0 <= metrics["induction_score_max"] <= 1 and 0 <= metrics["prev_token_score_max"] <= 1
    # mess3 beliefs depend strongly on the last token, so even a briefly trained model holds much of them
    assert metrics["belief_probe_r2_best"] > 0.3 > max(metrics["belief_probe_r2_shuffled"])
    assert len(metrics["hmm_state_probe_accuracy"]) == 3


def test_an_hmm_run_on_another_tokenizer_is_refused(tokenizer):
    from storylab.runs import read_run

    corpus = {"source": "mess3", "n_sequences": 8, "validation": 2, "length": 8}
    hmm_run = read_run(make_hmm_run(corpus, tokenizer, name="other_tokenizer"))
    with pytest.raises(ValueError, match="^hmm_run: .* used another tokenizer"):
        interp.check_same_tokenizer(hmm_run, tokenizer)  # `tokenizer` was trained on TEXTS, not on mess3


def test_interp_figures_have_one_trace_per_panel_or_class():
    from storylab import plots_interp

    similarity = interp.cosine_similarity_matrix(torch.randn(6, 4))
    assert len(plots_interp.similarity_pair(similarity, interp.coarse_grain(similarity, 2), list("abcdef")).data) == 2
    assert len(plots_interp.attention_heads(torch.rand(3, 4, 4), list("wxyz")).data) == 3
    assert len(plots_interp.attention_heads(torch.randn(2, 4, 4), diverging=True).data) == 2
    points = torch.randn(10, 3)
    classes = np.array(["name", "word"] * 5, dtype=object)
    assert [t.name for t in plots_interp.pca_scatter(points, classes).data] == ["name", "word"]
    assert plots_interp.pca_scatter(points, np.arange(10), dims=3).data[0].type == "scatter3d"
    assert len(plots_interp.circuit_pair([torch.eye(3), -torch.eye(3)], ["ov", "qk"], list("abc"), list("abc")).data) == 2
    beliefs = np.random.default_rng(0).dirichlet(np.ones(3), 5)
    xy = interp.simplex_xy(beliefs)
    assert len(plots_interp.simplex_pair(xy, xy, beliefs).data) == 4  # a triangle and the points, twice
    with pytest.raises(ValueError, match="^dims"):
        plots_interp.pca_scatter(points, dims=4)


def test_true_hmm_of_an_hmm_corpus_is_the_generating_model():
    from storylab.corpora import load_corpus
    from storylab.corpora.hmm_source import mess3_params

    corpus = load_corpus({"source": "mess3", "n_sequences": 4, "validation": 2, "length": 8})
    hmm = interp.true_hmm(corpus)
    _, trans, emit = mess3_params()
    assert np.allclose(hmm.trans.cpu().numpy(), trans) and np.allclose(hmm.emit.cpu().numpy(), emit)
    assert interp.true_hmm(load_corpus({"source": "stories", "n_stories": 4, "validation": 2})) is None


def test_single_token_ids_leave_out_longer_texts_with_a_warning():
    from storylab.interp import single_token_ids
    from storylab.tokenizers import train_tokenizer

    tokenizer = train_tokenizer("char", ["abc abc"])
    with pytest.warns(UserWarning, match=r"not single tokens of this tokenizer, left out: \['ab'\]"):
        ids = single_token_ids(tokenizer, ["a", "ab", "c"])
    assert [tokenizer.decode([i]) for i in ids] == ["a", "c"]


def test_interp_summary_keeps_each_probes_best_layer():
    import pandas as pd

    from storylab.interp import interp_summary

    class Fitted:
        explained_variance_ratio = np.array([0.5, 0.2, 0.1])

    scores = pd.DataFrame({"prev_token_score": [0.1, 0.9], "first_token_score": [0.3, 0.2], "induction_score": [0.0, 0.4]})
    story = pd.DataFrame({"variable": ["toy", "toy", "arc"], "label": ["embed", "after L0", "after L0"],
                          "accuracy": [0.3, 0.8, 0.6], "majority_baseline": [0.2, 0.2, 0.5], "shuffled_accuracy": [0.2, 0.21, 0.5]})
    summary = interp_summary(pd.DataFrame({"loss_nats": [3.0, 2.0]}), scores, {"first_half": 4.0, "second_half": 1.0},
                             pd.DataFrame({"ov_copying_score": [0.2, 0.7]}), [Fitted()], story_table=story)
    assert summary["prev_token_score_max"] == 0.9 and summary["residual_top2_variance"] == [pytest.approx(0.7)]
    assert summary["story_probe_accuracy"]["toy"] == {"accuracy": 0.8, "layer": "after L0", "majority": 0.2, "shuffled": 0.21}
    assert "belief_probe_r2_best" not in summary and "hmm_state_probe_accuracy" not in summary


def test_lines_by_draws_one_sorted_line_per_group():
    import pandas as pd

    from storylab import plots

    frame = pd.DataFrame({"length": [63, 15, 15], "gap": [0.2, 0.1, 0.3], "model": ["a", "a", "b"]})
    fig = plots.lines_by(frame, x="length", y="gap", by="model", log_x=True)
    assert [t.name for t in fig.data] == ["a", "b"] and list(fig.data[0].x) == [15, 63] and list(fig.data[0].y) == [0.1, 0.2]
    assert fig.layout.xaxis.type == "log" and fig.data[0].mode == "lines+markers"


def test_classifier_probe_scores_only_classes_seen_in_training():
    from storylab.interp import classifier_probe

    x = np.eye(3)[[0, 0, 1, 1, 2, 2]] * 5.0  # every class perfectly separable
    labels = np.array([0, 0, 1, 1, 2, 2])
    train, test = np.array([0, 2]), np.array([1, 3, 4, 5])  # class 2 was never seen in training
    result = classifier_probe(x, labels, train, test)
    assert result == {"accuracy": 1.0, "majority_baseline": 0.5, "n_test": 2}
