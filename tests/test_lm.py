"""Every model family through the one LanguageModel interface: scores, next-token
probabilities, generation, candidates, the `<unk>` rule and the model record."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from storylab.hmm import CategoricalHMM
from storylab.kneser_ney import KneserNey
from storylab.lm import FAMILIES, LanguageModel, Score, candidate_probabilities, generate_text, next_token_table, score
from storylab.metrics import model_record
from storylab.ngram import BigramModel, NeuralBigram, UnigramModel
from storylab.prompts import UnknownTokenWarning, encode_prompt
from storylab.tokenizers import EncodedSplit, encode_texts, train_tokenizer
from storylab.transformer import RNNLM, ModelConfig, StoryRNN, StoryTransformer, TransformerLM

TRAIN = ["Tim sat.", "Lily ran to Tim.", "Once upon a time, Lily sat and Tim ran.", "Tim ran."] * 2
VALIDATION = ["Lily sat.", "Once upon a time, Tim ran to Lily and sat."]  # the second is longer than n_ctx
N_CTX, STRIDE = 8, 3


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer("char", TRAIN)


def encoded_split(tokenizer, texts) -> EncodedSplit:
    ids = encode_texts(tokenizer, texts)
    return EncodedSplit(ids=np.concatenate(ids).astype(np.uint16), offsets=np.cumsum([0] + [len(x) for x in ids]),
                        n_chars=sum(len(t) for t in texts), eot_id=tokenizer.eos_token_id, unk_id=tokenizer.unk_token_id)


@pytest.fixture(scope="module")
def models(tokenizer):
    vocab, eot = len(tokenizer), tokenizer.eos_token_id
    train = encoded_split(tokenizer, TRAIN)
    hmm = CategoricalHMM(4, vocab, seed=0, device="cpu", eot_id=eot)
    hmm.fit(train, n_iter=2, progress=False)
    module = StoryTransformer(ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32, n_ctx=N_CTX, d_vocab=vocab), seed=0)
    lstm = StoryRNN(ModelConfig(architecture="lstm", n_layers=2, d_model=16, n_ctx=N_CTX, d_vocab=vocab), seed=0)
    with torch.no_grad():  # away from the init, so predictions depend on the context
        for param in [*module.parameters(), *lstm.parameters()]:
            param.add_(0.5 * torch.randn(param.shape, generator=torch.Generator().manual_seed(1)))
    return {
        "unigram": UnigramModel(vocab, eot, k=0.5).fit(train),
        "bigram": BigramModel(vocab, eot, k=0.5).fit(train),
        "neural bigram": NeuralBigram(vocab, eot, steps=20, device="cpu").fit(train),
        "kneser-ney": KneserNey(vocab, eot, order=3).fit(train),
        "hmm": hmm,
        "transformer": TransformerLM(module.eval(), eot, stride=STRIDE, train_tokens=1000),
        "rnn": RNNLM(lstm.eval(), eot, train_tokens=1000),
    }


ALL = ["unigram", "bigram", "neural bigram", "kneser-ney", "hmm", "transformer", "rnn"]
# float64 tables for the n-grams; the HMM's forward pass and the neural models' logits are float32
RTOL = {"unigram": 1e-12, "bigram": 1e-12, "neural bigram": 1e-12, "kneser-ney": 1e-12, "hmm": 1e-5, "transformer": 1e-5,
        "rnn": 1e-5}


def one_token_at_a_time(model: RNNLM, tokens: torch.Tensor) -> np.ndarray:
    """−ln p of tokens 1.. (token 0 is context), feeding the recurrent module one token per call, state carried."""
    nats, state = [], None
    with torch.no_grad():
        for position in range(len(tokens) - 1):
            logits, state = model.module.run(tokens[None, position : position + 1], state)
            nats.append(-logits[0, -1].double().log_softmax(-1)[tokens[position + 1]].item())
    return np.array(nats)


def own_nats(name, model, sequences) -> np.ndarray:
    """Total −ln p per sequence, computed without `token_nats`."""
    if name == "rnn":  # the state runs over the whole story, however long: no window
        return np.array([one_token_at_a_time(model, torch.tensor([model.eot_id, *seq])).sum() for seq in sequences])
    if name != "transformer":
        return -model.log_likelihood(sequences)
    totals = []
    with torch.no_grad():
        for seq in sequences:
            tokens = torch.tensor([model.eot_id, *seq])
            if len(seq) <= model.n_ctx:  # one plain forward pass over end-of-text + story
                log_probs = model.module(tokens[None, :-1])[0].double().log_softmax(-1)
                totals.append(-log_probs.gather(1, tokens[1:, None]).sum().item())
            else:
                totals.append(sliding_window_by_hand(model, tokens).sum())
    return np.array(totals)


def sliding_window_by_hand(model, tokens: torch.Tensor) -> np.ndarray:
    """Each target t of `tokens` (position 0 is context), predicted one at a time from the
    context the documented windowing gives it: the n_ctx tokens of its window, whose starts
    advance by the stride; a target is scored by the last window that reaches it first."""
    nats = []
    for target in range(1, len(tokens)):
        window_start = 0 if target <= model.n_ctx else ((target - model.n_ctx - 1) // model.stride + 1) * model.stride
        context = tokens[window_start:target]
        assert len(context) >= min(target, model.n_ctx - model.stride)  # never less context than promised
        log_probs = model.module(context[None])[0, -1].double().log_softmax(-1)
        nats.append(-log_probs[tokens[target]].item())
    return np.array(nats)


@pytest.mark.parametrize("name", ALL)
def test_every_family_is_a_language_model(models, name):
    model = models[name]
    assert isinstance(model, LanguageModel)
    assert model.family == name and model.family in FAMILIES and model.label
    assert model.n_params > 0 and model.train_tokens > 0 and model.train_flops > 0
    assert model.vocab_size == models["unigram"].vocab_size and model.eot_id == models["unigram"].eot_id


@pytest.mark.parametrize("name", ALL)
def test_score_is_the_sum_of_token_nats_and_the_familys_own_likelihood(models, tokenizer, name):
    model, split = models[name], encoded_split(tokenizer, VALIDATION)
    sequences = split.sequences()
    nats = model.token_nats(split)
    assert [len(n) for n in nats] == [len(s) for s in sequences] and all(n.dtype == np.float64 for n in nats)
    result = score(model, split, floor_bits_per_char=0.5)
    assert result.total_nats == float(np.concatenate(nats).sum())
    assert result.total_nats == pytest.approx(own_nats(name, model, sequences).sum(), rel=RTOL[name])
    assert (result.n_tokens, result.n_chars, result.n_unk) == (split.n_tokens, split.n_chars, 0)
    assert result.bits_per_char == pytest.approx(result.total_nats / math.log(2) / split.n_chars)
    assert result.gap_to_floor_bits_per_char == pytest.approx(result.bits_per_char - 0.5)
    assert result.stride == (STRIDE if name == "transformer" else None)


def test_the_transformers_sliding_window_matches_an_explicit_loop(models, tokenizer):
    model = models["transformer"]
    story = np.asarray(encode_texts(tokenizer, [VALIDATION[1]])[0] + [model.eot_id])
    assert len(story) > 4 * model.n_ctx
    expected = sliding_window_by_hand(model, torch.tensor([model.eot_id, *story]))
    np.testing.assert_allclose(model.token_nats([story])[0], expected, rtol=1e-5)
    wider = TransformerLM(model.module, model.eot_id)  # default stride n_ctx // 2: more context, a different score
    assert wider.stride == N_CTX // 2 and not np.allclose(wider.token_nats([story])[0], expected)


@pytest.mark.parametrize("name", ["hmm", "transformer", "rnn"])
def test_next_token_probs_all_rows_are_the_next_token_probs_of_each_prefix(models, tokenizer, name):
    model = models[name]
    story = encode_texts(tokenizer, [VALIDATION[1]])[0][:20]  # end-of-text + 20 tokens: past the n_ctx of 8
    rows = model.next_token_probs_all(story)
    assert rows.shape == (len(story) + 1, model.vocab_size) and rows.dtype == np.float64
    for t in range(len(story) + 1):
        np.testing.assert_allclose(rows[t], model.next_token_probs(story[:t]), rtol=RTOL[name], atol=1e-12)
    assert model.next_token_probs_all([]).shape == (1, model.vocab_size)


def test_the_rnn_carries_its_state_over_the_whole_story(models, tokenizer):
    model = models["rnn"]
    story = np.asarray(encode_texts(tokenizer, [VALIDATION[1]])[0] + [model.eot_id])
    assert len(story) > 4 * N_CTX  # far past its training window: no window, no stride
    expected = one_token_at_a_time(model, torch.tensor([model.eot_id, *story]))
    np.testing.assert_allclose(model.token_nats([story])[0], expected, rtol=1e-5)
    early_change = story.copy()
    early_change[1] = (early_change[1] + 1) % model.vocab_size  # a token more than n_ctx before the last one
    assert model.token_nats([early_change])[0][-1] != pytest.approx(model.token_nats([story])[0][-1], rel=1e-9)


@pytest.mark.parametrize("name", ALL)
def test_next_token_probs_are_normalised_and_equal_exp_minus_token_nats(models, name):
    model = models[name]
    vocab = model.vocab_size
    for prefix in ([], [model.eot_id], [5, 3, 7]):
        probs = model.next_token_probs(prefix)
        assert probs.shape == (vocab,) and probs.dtype == np.float64 and probs.sum() == pytest.approx(1.0, abs=1e-12)
        last_token_nats = [nats[-1] for nats in model.token_nats([np.array([*prefix, x]) for x in range(vocab)])]
        np.testing.assert_allclose(probs, np.exp(-np.array(last_token_nats)), rtol=RTOL[name])


@pytest.mark.parametrize("name", ALL)
def test_generate_is_deterministic_per_seed_and_stops_at_stop_id(models, name):
    model = models[name]
    prefix = [5, 3]
    sampled = model.generate(prefix, 12, seed=7, stop_id=None)
    assert sampled.dtype == np.int64 and len(sampled) == 12
    assert np.array_equal(sampled, model.generate(np.array(prefix), 12, seed=7, stop_id=None))
    assert not all(np.array_equal(sampled, model.generate(prefix, 12, seed=s, stop_id=None)) for s in range(8, 12))
    greedy = model.generate(prefix, 5, greedy=True, stop_id=None)
    assert greedy[0] == np.argmax(model.next_token_probs(prefix))
    stop = int(sampled[3])
    stopped = model.generate(prefix, 12, seed=7, stop_id=stop)
    first = list(sampled).index(stop)
    assert list(stopped) == list(sampled[: first + 1])  # the same draws, cut after the first stop_id
    ended = model.generate(prefix, 40, temperature=3.0, seed=1)  # stop_id defaults to the end-of-text token
    assert model.eot_id not in ended[:-1]
    with pytest.raises(ValueError, match="^temperature"):
        model.generate(prefix, 3, temperature=0)
    with pytest.raises(ValueError, match="^prefix_ids: token id"):
        model.generate([model.vocab_size], 3)


@pytest.mark.parametrize("name", ALL)
def test_candidates_of_several_tokens_follow_the_chain_rule(models, tokenizer, name):
    model = models[name]
    prompt, candidates = "Tim", [" sat.", " ran", "s", " to"]  # within the transformer's context of 8
    got = candidate_probabilities(model, tokenizer, prompt, candidates)
    prompt_ids = encode_prompt(tokenizer, prompt)
    by_hand = {}
    for candidate in candidates:
        context, p = list(prompt_ids), 1.0
        for token in encode_prompt(tokenizer, candidate):
            p *= model.next_token_probs(context)[token]
            context.append(token)
        by_hand[candidate] = p
    total = sum(by_hand.values())
    assert list(got) == sorted(candidates, key=lambda c: -by_hand[c])  # most likely first
    for candidate in candidates:
        assert got[candidate] == pytest.approx(by_hand[candidate] / total, rel=10 * RTOL[name])


def test_candidate_errors(models, tokenizer):
    model = models["bigram"]
    with pytest.raises(ValueError, match="^candidates: expected at least one"):
        candidate_probabilities(model, tokenizer, "Tim", [])
    with pytest.raises(ValueError, match="^candidates: expected non-empty strings"):
        candidate_probabilities(model, tokenizer, "Tim", ["a", ""])
    with pytest.raises(ValueError, match="^candidates: a candidate is listed twice"):
        candidate_probabilities(model, tokenizer, "Tim", ["a", "a"])
    with pytest.warns(UnknownTokenWarning), pytest.raises(ValueError, match="^candidates: two candidates encode to the same"):
        candidate_probabilities(model, tokenizer, "Tim", ["X", "Z"])


def test_a_prompt_the_tokenizer_cannot_spell_warns_in_one_line(tokenizer):
    with pytest.warns(UnknownTokenWarning, match=r"^prompt: the tokenizer has no token for 'B', 'x': 3 of 7 tokens became '<unk>'$"):
        ids = encode_prompt(tokenizer, "Box Bo ")
    assert ids.count(tokenizer.unk_token_id) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_prompt(tokenizer, "Tim sat.")  # nothing unknown: silent


def test_text_helpers_work_for_every_family(models, tokenizer):
    for model in models.values():
        text = generate_text(model, tokenizer, "Tim", 6, greedy=True, stop_at_eot=False)
        assert text == tokenizer.decode(model.generate(encode_prompt(tokenizer, "Tim"), 6, greedy=True, stop_id=None).tolist())
        table = next_token_table(model, tokenizer, "Tim", k=3)
        probs = model.next_token_probs(encode_prompt(tokenizer, "Tim"))
        assert [p for _, p in table] == pytest.approx(sorted(probs)[::-1][:3])


def test_unk_in_the_validation_text_makes_bits_per_char_null_with_the_reason(models, tokenizer):
    split = encoded_split(tokenizer, ["Tim sat by Bob."])  # 'B' and 'b' are not in the training text
    result = score(models["bigram"], split, floor_bits_per_char=0.5)
    n_unk = sum(c in "Bb" for c in "Tim sat by Bob.")
    assert result.n_unk == n_unk and result.unk_rate == pytest.approx(n_unk / split.n_tokens)
    assert result.bits_per_char is None and result.gap_to_floor_bits_per_char is None
    assert "<unk>" in result.note and f"{n_unk} of {split.n_tokens}" in result.note
    metrics = result.to_metrics()
    assert metrics["val_bits_per_char"] is None and metrics["val_nats_per_token"] == pytest.approx(result.total_nats / split.n_tokens)
    assert metrics["val_unk_rate"] == result.unk_rate and metrics["val_bits_per_char_note"] == result.note


def test_score_checks_its_inputs(models):
    with pytest.raises(ValueError, match="^n_chars: expected the character count"):
        score(models["bigram"], [np.array([1, 2, 0])])
    with pytest.raises(ValueError, match="^split: token id 99"):
        score(models["bigram"], [np.array([1, 99])], n_chars=2)
    plain = score(models["bigram"], [np.array([1, 2, 0])], n_chars=3)
    assert plain.floor_bits_per_char is None and plain.to_metrics()["gap_to_floor_bits_per_char"] is None


@pytest.mark.parametrize("name", ALL)
def test_model_record_reads_the_model_and_its_score(models, tokenizer, name):
    model = models[name]
    result = score(model, encoded_split(tokenizer, VALIDATION))
    record = model_record(model, result, tokenizer="char", corpus={"source": "test"}, elapsed_s=1.5, note="x")
    assert (record["family"], record["model"], record["params"], record["train_flops"]) == (
        model.family, model.label, model.n_params, model.train_flops)
    assert record["val_bits_per_char"] == result.bits_per_char and record["val_tokens"] == result.n_tokens
    assert record["val_stride_tokens"] == result.stride and record["note"] == "x"
    again = Score(total_nats=record["val_total_nats"], n_tokens=record["val_tokens"], n_chars=record["val_chars"],
                  n_unk=result.n_unk, stride=record["val_stride_tokens"])
    assert again.to_metrics() == {k: record[k] for k in again.to_metrics()}  # the record holds a whole Score


def test_a_transformer_rescored_with_another_stride(models, tokenizer):
    model = models["transformer"]
    assert model.with_stride(None) is model
    other = model.with_stride(1)
    assert other.stride == 1 and other.module is model.module and other.train_tokens == model.train_tokens
    with pytest.raises(ValueError, match="stride"):
        model.with_stride(model.n_ctx + 1)
