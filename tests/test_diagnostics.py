"""The bits ledger, minimal pairs, hard cases, story-variable probes and notebook 06's inputs (storylab.diagnostics).

Models are the real families behind the LanguageModel interface, tiny and fitted on a
few stories: conservation is checked for every family under every tokenizer kind (char,
byte, BPE, word); the other tests use a count bigram per tokenizer.
"""

from __future__ import annotations

import html
import json
import math
import re
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from storylab.corpora import story_grammar
from storylab.corpora.stories import (ARC_NAMES, filler_sentences, generate_stories, parse_story, story_arc,
                                      story_events, story_neg_log2_prob)
from storylab.corpora.story_categories import CATEGORIES, CHOSEN, FREE_CATEGORIES
from storylab.corpora.story_grammar import Options
from storylab.corpora.story_options import GENDER_OF
from storylab.diagnostics import (CATEGORY_NAMES, char_costs, excess_by_distance, ledger_table, recall_table,
                                  spread_token_nats, true_ledgers)
from storylab.diagnostics.hard_cases import (hard_cases_html, hard_cases_page, hard_stories, next_token_tables, story_html,
                                             worst_positions)
from storylab.diagnostics.pairs import (PHENOMENA, break_distance, corpus_names, fuzz_pairs, pair_accuracy,
                                        read_pairs_jsonl, score_pairs, story_pairs, text_name_pairs, wilson_interval,
                                        write_pairs_jsonl)
from storylab.hmm import CategoricalHMM
from storylab.interp import ResidualSample, story_probe_targets, story_sequences, story_variable_probes
from storylab.kneser_ney import KneserNey
from storylab.ngram import BigramModel, NeuralBigram, UnigramModel
from storylab.tokenizers import encode_texts, train_tokenizer
from storylab.transformer import TransformerLM, train
from storylab.transformer.config import ModelConfig, TrainConfig

TOKENIZERS = ("char", "byte", "bpe:300", "word:150")
FAMILIES = ("unigram", "bigram", "neural bigram", "kneser-ney", "hmm", "transformer")
RELATIVE = 1e-9


@pytest.fixture(scope="module")
def stories():
    return generate_stories(24, seed=5)


@pytest.fixture(scope="module")
def ledgers(stories):
    return true_ledgers(stories[0])


@pytest.fixture(scope="module")
def train_stories():
    return generate_stories(120, seed=1)[0]


@pytest.fixture(scope="module")
def tokenizers(train_stories):
    """{tokenizer spec: (tokenizer, training sequences with end-of-text)}, trained on other stories than the ones scored."""
    out = {}
    for spec in TOKENIZERS:
        tokenizer = train_tokenizer(spec, train_stories)
        out[spec] = (tokenizer, [np.asarray(ids + [tokenizer.eos_token_id]) for ids in encode_texts(tokenizer, train_stories)])
    return out


def fit_family(family: str, tokenizer, seqs):
    """A tiny fitted model of `family` (under a second each)."""
    V, eot = len(tokenizer), tokenizer.eos_token_id
    if family == "hmm":
        hmm = CategoricalHMM(4, V, seed=0, eot_id=eot)
        hmm.fit(seqs, n_iter=2, progress=False)
        return hmm
    if family == "transformer":  # n_ctx 32 < every story: the sliding window is exercised too
        result = train(ModelConfig(n_layers=1, d_model=16, n_heads=2, n_ctx=32),
                       TrainConfig(max_steps=3, warmup_steps=1, decay_steps=2, batch_size=4, eval_every=3,
                                   eval_tokens=256, save_every=3),
                       np.concatenate(seqs), np.concatenate(seqs[:5]), out_dir=tempfile.mkdtemp(), tokenizer=tokenizer,
                       progress=False)
        return TransformerLM(result.model, eot)
    make = {"unigram": lambda: UnigramModel(V, eot, k=0.1), "bigram": lambda: BigramModel(V, eot, k=0.1),
            "neural bigram": lambda: NeuralBigram(V, eot, steps=5, seed=0, device="cpu"),
            "kneser-ney": lambda: KneserNey(V, eot, order=3)}[family]
    return make().fit(seqs)


@pytest.fixture(scope="module")
def models(tokenizers):
    """{tokenizer spec: (tokenizer, count bigram)}."""
    return {spec: (tokenizer, fit_family("bigram", tokenizer, seqs)) for spec, (tokenizer, seqs) in tokenizers.items()}


def close(a, b) -> bool:
    return abs(a - b) <= RELATIVE * max(abs(a), abs(b), 1.0)


# --- the recorded parse -----------------------------------------------------------------------------

def test_recorded_events_account_for_every_bit_of_every_story(stories):
    for text in stories[0]:
        events = story_events(text)
        assert close(sum(e.bits for e in events), story_neg_log2_prob(text))
        for e in events:
            assert close(sum(b for _, b in e.bits_at), e.bits)
            assert all(e.start <= p <= e.decided_at <= len(text) for p, _ in e.bits_at)
            if e.kind == "recall":
                assert e.bits == 0 and e.bits_at == ()
            if e.kind == "slot":
                assert e.start <= e.decided_at <= e.end  # decided inside its text or at the next character


def test_a_slot_reveals_the_exact_probability_of_each_character():
    names = Options(["Ann", "Anna", "Bob"], weights=[1, 1, 2])

    def program(w):
        w.say("Hi {who}.", who=names)

    def revealed(text):
        (event,) = [e for e in story_grammar.parse(program, text, record=True).events if e.kind == "slot"]
        return event.decided_at, dict(event.bits_at)

    # "A" (1/2 of the mass) then "Ann" vs "Anna" is decided by the character after "Ann".
    assert revealed("Hi Ann.") == (6, {3: 1.0, 6: 1.0})
    assert revealed("Hi Anna.") == (6, {3: 1.0, 6: 1.0})
    assert revealed("Hi Bob.") == (3, {3: 1.0})


def test_a_template_choice_is_revealed_where_its_alternatives_die():
    def program(w):
        w.bind(hero="Lily")
        w.say_one(("{hero} felt {good}.", "{hero} felt {good} and calm.", "It rained.", "It was {good}."),
                  good=Options(["happy", "glad"]))

    events = story_grammar.parse(program, "Lily felt glad.", record=True).events
    sentence = next(e for e in events if e.kind == "sentence")
    # "It ..." templates die at "L" (half the mass), "... and calm." at "." after "glad".
    assert sentence.decided_at == 14
    assert dict(sentence.bits_at) == pytest.approx({0: 1.0, 14: 1.0})
    assert [(e.kind, e.name) for e in events if e.kind != "sentence"] == [("recall", "hero"), ("slot", "good")]


def test_every_chosen_slot_has_a_category_in_the_table():
    texts, _ = generate_stories(150, seed=11)
    chosen = {e.name for text in texts for e in story_events(text) if e.kind == "slot"}
    assert chosen - set(CHOSEN) == set()
    assert set(CHOSEN.values()) <= set(CATEGORIES)
    assert 10 <= len(CATEGORIES) <= 16


# --- the true ledger ------------------------------------------------------------------------------------

def test_true_ledger_sums_to_each_story_probability_and_the_split_to_the_floor(stories, ledgers):
    texts, bits = stories
    for ledger, expected in zip(ledgers, bits):
        assert close(ledger.bits.sum(), expected)
        assert close(ledger.category_sums(ledger.bits).sum(), expected)
        shares = np.bincount(ledger.position, weights=ledger.share, minlength=len(ledger.bits))
        assert np.allclose(shares, 1.0)
    floor = bits.sum() / sum(map(len, texts))
    assert close(sum(ledger.bits.sum() for ledger in ledgers) / sum(map(len, texts)), floor)


def test_template_and_recall_characters_cost_nothing(ledgers):
    free = [CATEGORY_NAMES.index(c) for c in FREE_CATEGORIES]
    for ledger in ledgers:
        is_free = np.isin(ledger.category, free)
        assert np.all(ledger.bits[ledger.position[is_free]] == 0)
        main = ledger.main_category()
        assert main[len(ledger.text)] == CATEGORY_NAMES.index("end of story")
        for recall in ledger.recalls:
            recalled = ledger.text[recall.start:recall.end]
            assert 0 < recall.start - recall.antecedent_start
            if recall.category == "name recalled":
                assert ledger.text[recall.antecedent_start:recall.antecedent_end] == recalled
            # A recalled character is free unless it is where a sentence's or path's alternatives die
            # ("Sophie ..." against "She ..."): then those bits, and that category, are its own.
            for position in range(recall.start, recall.end):
                category = CATEGORY_NAMES[main[position]]
                if ledger.bits[position] == 0:
                    assert category == recall.category
                else:
                    assert category in ("sentence variant", "dialogue", "story path")


def test_a_text_no_story_prints_is_refused_with_its_index(stories):
    texts = list(stories[0][:3]) + ["Once upon a time, a dragon ate the moon."]
    with pytest.raises(ValueError, match=r"texts: story 3 is not one the story generator prints"):
        true_ledgers(texts)


# --- the model side: conservation for every tokenizer kind ------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("spec", TOKENIZERS)
def test_model_ledger_sums_to_its_token_nats_for_every_family_and_tokenizer(family, spec, tokenizers, stories, ledgers):
    tokenizer, seqs = tokenizers[spec]
    model = fit_family(family, tokenizer, seqs)
    assert model.family == family
    texts = stories[0]
    costs = char_costs(model, tokenizer, texts, batch_stories=7)
    nats = model.token_nats([np.asarray(ids + [model.eot_id]) for ids in encode_texts(tokenizer, texts)])
    for cost, story_nats, text in zip(costs, nats, texts):
        assert len(cost.nats) == len(text) + 1
        assert close(cost.nats.sum(), story_nats.sum())
        assert cost.nats[len(text)] == pytest.approx(story_nats[-1])  # end-of-text at the end of the story
    table = ledger_table(ledgers, {model.label: costs})
    total_bits = sum(n.sum() for n in nats) / math.log(2)
    assert close(table["model_bits"].sum(), total_bits)
    assert close(table["true_bits"].sum(), sum(ledger.neg_log2_prob for ledger in ledgers))
    assert np.allclose(table["excess_bits"], table["model_bits"] - table["true_bits"])
    n_chars = sum(map(len, texts))
    assert close(table["model_bits_per_char"].sum(), total_bits / n_chars)


@pytest.mark.parametrize("spec", ["byte", "bpe:300", "char"])
def test_tokens_that_split_a_character_put_their_nats_on_it(spec, models):
    tokenizer, model = models[spec]
    text = "Lily saw “é” and 😀 there."  # characters the stories never use: several bytes each
    (cost,) = char_costs(model, tokenizer, [text])
    nats = model.token_nats([np.asarray(encode_texts(tokenizer, [text])[0] + [model.eot_id])])[0]
    assert close(cost.nats.sum(), nats.sum())
    assert np.all(cost.nats[:len(text)] > 0)


def test_spreading_is_even_over_each_token_and_handles_empty_tokens():
    nats = spread_token_nats([2.0, 3.0, 0.5, 7.0], [(0, 2), (2, 3), (3, 3)], 3)
    assert nats.tolist() == [1.0, 1.0, 3.0, 7.5]  # the zero-width token and end-of-text at the end
    with pytest.raises(ValueError, match="token_nats"):
        spread_token_nats([1.0], [(0, 1)], 1)


def test_ledgers_and_costs_must_cover_the_same_texts(models, stories, ledgers):
    tokenizer, model = models["char"]
    costs = char_costs(model, tokenizer, stories[0][:5])
    with pytest.raises(ValueError, match="costs: model"):
        ledger_table(ledgers, {"m": costs})
    with pytest.raises(ValueError, match="model: expected a storylab.lm.LanguageModel"):
        char_costs(object(), tokenizer, stories[0][:2])


def test_recall_distances_in_characters_and_tokens(models, stories, ledgers):
    costs = {spec: char_costs(model, tok, stories[0]) for spec, (tok, model) in models.items() if spec in ("char", "bpe:300")}
    recalls = recall_table(ledgers, costs)
    assert set(recalls["category"]) == {"name recalled", "pronoun", "detail recalled"}
    char = recalls[recalls["model"] == "char"]
    assert (char["distance_tokens"] == char["distance_chars"]).all()  # one character per token
    bpe = recalls[recalls["model"] == "bpe:300"]
    assert (bpe["distance_tokens"] <= bpe["distance_chars"]).all() and (bpe["distance_tokens"] >= 0).all()
    assert np.allclose(char["excess_bits"], char["model_bits"] - char["true_bits"])
    binned = excess_by_distance(recalls, unit="chars")
    assert binned.groupby("model")["n"].sum().to_dict() == recalls.groupby("model").size().to_dict()
    assert (binned["distance_from"] < binned["distance_to"]).all()


# --- minimal pairs and the fuzzer -----------------------------------------------------------------------------

def test_minimal_pairs_change_one_recall_into_text_the_generator_cannot_print(stories):
    pairs = story_pairs(stories[0], seed=3)
    found = {p["phenomenon"] for p in pairs}
    assert len(found) >= 5 and found <= set(PHENOMENA)
    for p in pairs:
        good, bad = p["sentence_good"], p["sentence_bad"]
        parse_story(good)
        with pytest.raises(ValueError):
            parse_story(bad)
        start = p["position"]
        assert good[:start] == bad[:start] and good[start + len(p["good_text"]):] == bad[start + len(p["bad_text"]):]
        assert good[start:start + len(p["good_text"])] == p["good_text"] != p["bad_text"]
        assert p["distance_chars"] > 0
        if p["phenomenon"] == "pronoun agreement":
            assert {p["good_text"].lower(), p["bad_text"].lower()} in (
                {"he", "she"}, {"his", "her"}, {"him", "her"}, {"himself", "herself"})
        if p["phenomenon"] in ("name recall", "friend recall"):
            assert GENDER_OF[p["good_text"]] == GENDER_OF[p["bad_text"]]  # only memory tells them apart


def test_fuzzing_moves_the_same_pair_further_from_its_binding(stories):
    texts = stories[0][:8]
    pairs = fuzz_pairs(texts, inserted=(0, 2, 6), phenomena=["name recall", "pronoun agreement"], seed=1)
    frame = pd.DataFrame(pairs)
    fillers = filler_sentences(6, seed=1 * 1_000_003 + 0)
    for (story, phenomenon), group in frame.groupby(["story", "phenomenon"]):
        group = group.sort_values("inserted_sentences")
        assert group["inserted_sentences"].tolist() == [0, 2, 6]
        assert group["distance_chars"].is_monotonic_increasing
        original = group.iloc[0]
        assert original["sentence_good"] == texts[story]
        with pytest.raises(ValueError):
            parse_story(original["sentence_bad"])
        for _, row in group.iterrows():
            at = row["position"]
            assert row["sentence_good"][at:at + len(row["good_text"])] == row["good_text"]
            assert row["sentence_bad"][at:at + len(row["bad_text"])] == row["bad_text"]
    story0 = frame[(frame["story"] == 0) & (frame["inserted_sentences"] == 2)]
    if len(story0):
        assert " ".join(fillers[:2]) in story0.iloc[0]["sentence_good"]
    with pytest.raises(ValueError, match="closing quote"):
        fuzz_pairs(texts, phenomena=["closing quote"])


def test_filler_sentences_name_no_one():
    words = set(re.findall(r"[A-Za-z]+", " ".join(filler_sentences(60, seed=2))))
    assert not words & (set(GENDER_OF) | {"he", "she", "He", "She", "his", "her", "His", "Her"})


TINY_TEXTS = [
    "Once upon a time, there was a girl named Sue. Sue liked to play. One day, Sue met a dog named Max. "
    "Max was happy. Sue and Max played all day. Mom said, \"Sue, come home!\"",
    "Tom had a red ball. The ball was big. Tom gave the ball to Ann, and Ann smiled at Tom.",
    "There was a cat. The cat was sad. Then Mom came and the cat was happy. Her mom smiled. Bob saw it too.",
]


def test_real_text_pairs_swap_a_repeated_name_for_another_corpus_name():
    names = corpus_names(TINY_TEXTS, min_count=1)
    assert {"Sue", "Max", "Tom", "Ann"} <= set(names)
    # sentence-initial words can not be told from "The": Bob, only ever first, is not taken
    assert not {"Once", "One", "The", "There", "Then", "Mom", "Bob"} & set(names)
    pairs = text_name_pairs(TINY_TEXTS, names=names, seed=0)
    assert len(pairs) == 2  # the third story repeats no name
    for p in pairs:
        assert p["good_text"] in names and p["bad_text"] in names and p["bad_text"] not in p["sentence_good"]
        at = p["position"]
        assert p["sentence_bad"] == p["sentence_good"][:at] + p["bad_text"] + p["sentence_good"][at + len(p["good_text"]):]
        assert p["sentence_good"].count(p["good_text"]) >= 2 and p["distance_chars"] > 0


def test_text_without_names_has_no_pairs_and_explicit_names_need_two():
    hmm_like = ["abcab cabca bcabb", "0 1 1 0 2 1 0 1 2 0 2 1 1"]  # what an HMM or the addition corpus prints
    assert text_name_pairs(hmm_like) == []  # 06 skips its pair sections on such corpora
    with pytest.raises(ValueError, match="^names: expected at least 2 names"):
        text_name_pairs(TINY_TEXTS, names=["Sue"])


def test_pairs_round_trip_as_blimp_json_lines(stories, tmp_path):
    pairs = story_pairs(stories[0][:4], phenomena=["name recall", "closing quote"])
    path = write_pairs_jsonl(pairs, tmp_path / "pairs.jsonl")
    back = read_pairs_jsonl(path)
    assert back == pairs
    assert {"sentence_good", "sentence_bad", "UID", "pairID", "linguistics_term", "field"} <= set(back[0])
    with pytest.raises(ValueError, match="path"):
        read_pairs_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="phenomena"):
        story_pairs(stories[0][:2], phenomena=["nonsense"])


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(float(low), 4), round(float(high), 4)) == (0.4902, 0.9433)
    low, high = wilson_interval(np.array([0, 50]), np.array([10, 100]))
    assert low[0] == pytest.approx(0.0, abs=1e-12) and high[0] == pytest.approx(0.2775, abs=1e-4)
    assert low[1] < 0.5 < high[1]


class TextOracle:
    """Knows which texts are real: 0 nats on each of their tokens, 1 nat elsewhere."""

    label, eot_id = "oracle", 0

    def __init__(self, tokenizer, good_texts):
        self.good = {tuple(ids) for ids in encode_texts(tokenizer, list(good_texts))}

    def token_nats(self, sequences):
        return [np.zeros(len(s)) if tuple(s[:-1]) in self.good else np.ones(len(s)) for s in sequences]


def test_scoring_counts_a_pair_passed_when_the_good_story_is_likelier(models, stories):
    tokenizer, bigram = models["bpe:300"]
    pairs = story_pairs(stories[0][:10])
    oracle = TextOracle(tokenizer, [p["sentence_good"] for p in pairs])
    scored = pd.concat([score_pairs(oracle, tokenizer, pairs), score_pairs(bigram, tokenizer, pairs)])
    accuracy = pair_accuracy(scored)
    oracle_rows = accuracy[accuracy["model"] == "oracle"]
    assert (oracle_rows["accuracy"] == 1).all() and (oracle_rows["ci_low"] > 0).all()
    assert ((accuracy["ci_low"] <= accuracy["accuracy"]) & (accuracy["accuracy"] <= accuracy["ci_high"])).all()
    assert accuracy.groupby("model")["n"].sum().tolist() == [len(pairs)] * 2


def test_break_distance_is_the_first_distance_at_chance():
    accuracy = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 2, "inserted_sentences": [0, 4, 16, 64, 0, 4],
                             "n": 100, "n_correct": [99, 95, 60, 52, 97, 96], "median_distance_chars": [50, 200, 700, 2600, 50, 200]})
    accuracy["accuracy"] = accuracy["n_correct"] / accuracy["n"]
    accuracy["ci_low"], accuracy["ci_high"] = wilson_interval(accuracy["n_correct"], accuracy["n"])
    table = break_distance(accuracy).set_index("model")
    assert table.loc["a", "break_inserted_sentences"] == 64  # 60/100 is still above chance (ci_low 0.502)
    assert table.loc["a", "break_median_distance_chars"] == 2600
    assert math.isnan(table.loc["b", "break_inserted_sentences"])


# --- hard cases ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_model_costs(models, stories):
    (char_tok, char_model), (bpe_tok, bpe_model) = models["char"], models["bpe:300"]
    return {"char": char_costs(char_model, char_tok, stories[0]), "bpe": char_costs(bpe_model, bpe_tok, stories[0])}


def test_hard_stories_are_where_one_model_wins_by_most_bits(two_model_costs):
    hard = hard_stories(two_model_costs, "bpe", "char", n=3)
    totals = {k: np.array([c.bits.sum() for c in v]) for k, v in two_model_costs.items()}
    advantage = totals["char"] - totals["bpe"]
    assert hard["story"].tolist() == np.argsort(-advantage)[:3].tolist()
    assert np.allclose(hard["advantage_bits"], advantage[hard["story"]])
    with pytest.raises(ValueError, match="other"):
        hard_stories(two_model_costs, "bpe", "hmm")


def test_worst_positions_per_model_with_context(two_model_costs, stories, ledgers):
    worst = worst_positions(stories[0], two_model_costs, ledgers, n=20)
    assert worst.groupby("model").size().to_dict() == {"char": 20, "bpe": 20}
    assert np.allclose(worst["excess_bits"], worst["model_bits"] - worst["true_bits"])
    for _, group in worst.groupby("model"):
        assert group["excess_bits"].is_monotonic_decreasing
    row = worst.iloc[0]
    assert f"⟦{row['token']}⟧".replace("\n", "⏎") in row["context"] or row["token"] == "<end of story>"


def test_units_merge_tokens_that_share_a_character_and_sum_their_bits():
    from storylab.diagnostics import CharCosts
    from storylab.diagnostics.hard_cases import token_units, unit_bits, worst_tokens

    # "aéb": a byte-level tokenizer splits é into two tokens that both cover character 1
    cost = CharCosts(np.log(2) * np.array([1.0, 2.0, 4.0, 8.0]), np.array([0, 1, 1, 2]), np.array([1, 2, 2, 3]))
    assert token_units(cost) == [(0, 1, 0), (1, 2, 1), (2, 3, 3)]
    units = unit_bits(cost)
    assert units["start"].tolist() == [0, 1, 2, 3] and units["token"].tolist() == [0, 1, 3, 4]  # + the end of the story
    assert units["model_bits"] == pytest.approx([1.0, 2.0, 4.0, 8.0]) and not units["true_bits"].any()
    assert worst_tokens(cost, n=2) == [4, 3]
    worst = worst_positions(["aéb"], {"m": [cost]}, n=2)
    assert worst["token"].tolist() == ["<end of story>", "b"] and worst["category"].isna().all()


def test_hard_case_html_is_self_contained_and_shows_every_character(models, two_model_costs, stories, ledgers):
    tokenizer, model = models["bpe:300"]
    text = stories[0][0]
    tables = next_token_tables(model, tokenizer, text, top_k=3)
    assert len(tables) == len(two_model_costs["bpe"][0].token_starts) + 1
    assert all(len(t) == 3 and t[0][1] >= t[1][1] for t in tables)
    fragment = story_html(text, two_model_costs["bpe"][0], ledgers[0], tables)
    shown = re.sub(r'<span class="tip">.*?</span>', "", fragment, flags=re.S)
    shown = re.sub(r"<[^>]+>", "", shown).replace("⏎\n", "\n").replace("⟂", "")
    assert html.unescape(shown) == text
    page = hard_cases_html(stories[0], two_model_costs, [0, 1], ledgers, {"bpe": [tables, None]})
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert page.count('class="tip"') >= 2 * (len(text) // 20)
    fragment = hard_cases_html(stories[0], two_model_costs, [0], page=False)
    assert fragment.startswith('<div class="storylab-hard">')
    assert hard_cases_page(fragment) == hard_cases_html(stories[0], two_model_costs, [0], page=True)


# --- story-variable probes ----------------------------------------------------------------------------------------

def test_story_probe_targets_align_with_story_sequences(models, stories):
    tokenizer, _ = models["bpe:300"]
    texts = stories[0][:6]
    sequences = story_sequences(tokenizer, texts, n_ctx=400)
    targets = story_probe_targets(tokenizer, texts, n_ctx=400)
    assert all(len(v) == sum(map(len, sequences)) for v in targets.values())
    bounds = np.cumsum([0] + [len(s) for s in sequences])
    for i, text in enumerate(texts):
        story = {k: v[bounds[i]:bounds[i + 1]] for k, v in targets.items()}
        assert story["hero_gender"][0] == -1 and story["arc"][0] == -1  # nothing read yet
        hero = next(text[e.start:e.end] for e in story_events(text) if e.kind == "slot" and e.name == "hero")
        assert story["hero_gender"][-1] == ("girl", "boy").index(GENDER_OF[hero])
        if len(sequences[i]) == len(encode_texts(tokenizer, [text])[0]) + 2:  # not cut by n_ctx
            assert story["arc"][-1] == ARC_NAMES.index(story_arc(text))
            assert story["quote_open"][-1] == 0
        assert np.all(np.diff((story["hero_gender"] >= 0).astype(int)) >= 0)  # once known, known for good


def planted_story_sample(tokenizer, texts, n_ctx):
    """A residual sample of `texts` whose second point holds the hero's gender in one direction, and its targets."""
    sequences = story_sequences(tokenizer, texts, n_ctx=n_ctx)
    targets = story_probe_targets(tokenizer, texts, n_ctx=n_ctx)
    n = sum(map(len, sequences))
    generator = torch.Generator().manual_seed(0)
    resid = torch.randn(2, n, 8, generator=generator)
    resid[1, :, 0] += 4.0 * torch.as_tensor(np.maximum(targets["hero_gender"], 0), dtype=torch.float32)
    sample = ResidualSample(resid, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                            np.concatenate([np.arange(len(s)) for s in sequences]),
                            np.concatenate([np.full(len(s), i) for i, s in enumerate(sequences)]), ["embed", "after L0"])
    return sample, targets


def test_story_variable_probes_find_a_planted_signal_and_not_a_shuffled_one(models, stories):
    tokenizer, _ = models["bpe:300"]
    sample, targets = planted_story_sample(tokenizer, stories[0][:16], n_ctx=200)
    table = story_variable_probes(sample, targets, variables=["hero_gender"]).set_index("label")
    assert table.loc["after L0", "accuracy"] > 0.95 > table.loc["after L0", "shuffled_accuracy"]
    assert table.loc["embed", "accuracy"] < 0.8
    with pytest.raises(ValueError, match="targets"):
        story_variable_probes(sample, {"hero_gender": targets["hero_gender"][:-1]})


def test_story_variable_probes_without_enough_held_out_positions_give_an_empty_table_with_its_columns(models, stories):
    tokenizer, _ = models["bpe:300"]
    sample, targets = planted_story_sample(tokenizer, stories[0][:4], n_ctx=20)  # a handful of held-out positions
    table = story_variable_probes(sample, targets)
    full = story_variable_probes(*planted_story_sample(tokenizer, stories[0][:16], n_ctx=200), variables=["hero_gender"])
    assert table.empty and list(table.columns) == list(full.columns)
    assert dict(table.groupby("variable")["accuracy"].max()) == {}  # 04's plot and summary read it like a full one


def test_model_diagnostics_flatten_figures_per_model(models, stories, ledgers):
    from storylab.diagnostics import model_diagnostics

    tokenizer, model = models["char"]
    table = ledger_table(ledgers, {"m": char_costs(model, tokenizer, stories[0])})
    accuracy = pd.DataFrame({"model": ["m", "m"], "phenomenon": ["name recall", "pronoun agreement"],
                             "n": [4, 6], "n_correct": [3, 3], "accuracy": [0.75, 0.5]})
    breaks = pd.DataFrame({"model": ["m"], "break_inserted_sentences": [float("nan")], "break_median_distance_chars": [900.0]})
    per_phenomenon = pd.DataFrame({"model": ["m"], "phenomenon": ["name recall"], "break_inserted_sentences": [8.0],
                                   "break_median_distance_chars": [400.0]})
    figures = model_diagnostics(table, accuracy, [breaks, per_phenomenon])["m"]
    assert figures["pair_accuracy/name recall"] == 0.75 and figures["pair_accuracy"] == 0.6  # 6 of 10 pairs
    assert figures["break_inserted_sentences"] is None and figures["break_inserted_sentences/name recall"] == 8.0
    per_category = sum(v for k, v in figures.items() if k.startswith("excess_bits_per_char/"))
    assert per_category == pytest.approx(figures["excess_bits_per_char"])
    assert figures["model_bits_per_char"] - figures["true_bits_per_char"] == pytest.approx(figures["excess_bits_per_char"])
    recall = table[table["category"].isin(["name recalled", "pronoun", "detail recalled"])]
    assert figures["recall_excess_bits_per_recall_char"] == pytest.approx(recall["excess_bits"].sum() / recall["n_chars"].sum())
    assert figures["recall_excess_bits_per_recall_char"] > 0  # a bigram does not remember


def test_model_diagnostics_become_records_keyed_by_run_and_model():
    from storylab.diagnostics import RunModel, diagnostics_records, headline_metrics

    model = BigramModel(5, 0)
    found = [RunModel("bigram (runs/02_hmm/a)", model, None, "runs/02_hmm/a", "bigram", "char")]
    (record,) = diagnostics_records(found, {"bigram (runs/02_hmm/a)": {"pair_accuracy": 0.5}})
    assert record == {"model": "bigram", "run_id": "runs/02_hmm/a", "label": "bigram (runs/02_hmm/a)", "family": "bigram",
                      "tokenizer": "char", "pair_accuracy": 0.5}
    assert headline_metrics([record]) == {"pair_accuracy/bigram (runs/02_hmm/a)": 0.5}


# --- what notebook 06 adds: capped and deduplicated pairs, hover tables, pooled distances ---------------------------

def test_capping_pairs_keeps_the_same_stories_at_every_distance(stories):
    from storylab.diagnostics import cap_pairs

    fuzzed = fuzz_pairs(stories[0][:12], inserted=(0, 4), phenomena=["name recall", "pronoun agreement"], seed=2)
    frame = pd.DataFrame(cap_pairs(fuzzed, 3))
    assert frame.groupby(["phenomenon", "inserted_sentences"]).size().max() == 3
    for _, group in frame.groupby("phenomenon"):
        at = {k: sorted(g["story"]) for k, g in group.groupby("inserted_sentences")}
        assert at[0] == at[4]  # the same pairs, moved
    with pytest.raises(ValueError, match="per_group"):
        cap_pairs(fuzzed, 0)


class CountingLM:
    """A model that counts the sequences it is asked to score."""

    label = "counting"

    def __init__(self, model):
        self.model, self.eot_id, self.n_scored = model, model.eot_id, 0

    def token_nats(self, sequences):
        self.n_scored += len(sequences)
        return self.model.token_nats(sequences)


def test_a_story_shared_by_several_pairs_is_scored_once(models, stories):
    tokenizer, bigram = models["char"]
    pairs = story_pairs(stories[0][:6])
    counting = CountingLM(bigram)
    scored = score_pairs(counting, tokenizer, pairs)
    distinct = {p["sentence_good"] for p in pairs} | {p["sentence_bad"] for p in pairs}
    assert counting.n_scored == len(distinct) < 2 * len(pairs)
    each = score_pairs(bigram, tokenizer, pairs)
    assert np.allclose(scored["good_nats"], each["good_nats"]) and np.allclose(scored["bad_nats"], each["bad_nats"])


def test_excess_by_distance_can_pool_the_categories(models, stories, ledgers):
    tokenizer, model = models["char"]
    recalls = recall_table(ledgers, {"m": char_costs(model, tokenizer, stories[0])})
    pooled = excess_by_distance(recalls, "chars", by=("model",))
    assert list(pooled.columns[:1]) == ["model"] and pooled["n"].sum() == len(recalls)
    weighted = (pooled["mean_excess_bits"] * pooled["n"]).sum()
    assert weighted == pytest.approx(recalls["excess_bits"].sum())
    with pytest.raises(ValueError, match="by"):
        excess_by_distance(recalls, "chars", by=("nonsense",))


def test_offsets_belong_to_the_ids_encode_texts_gives(models, stories):
    from storylab.tokenizers import encode_with_offsets

    bpe = models["bpe:300"][0]
    encoded = encode_with_offsets(bpe, stories[0][:3])
    assert [ids for ids, _ in encoded] == encode_texts(bpe, stories[0][:3])
    text, (ids, offsets) = stories[0][0], encoded[0]
    assert "".join(text[a:b] for a, b in offsets) == text  # byte-level BPE tiles the story


def test_hover_tables_are_made_only_at_a_storys_worst_tokens(models, stories, ledgers):
    from storylab.diagnostics import hard_case_tables, worst_tokens

    tokenizer, model = models["bpe:300"]
    text = stories[0][1]
    (cost,) = char_costs(model, tokenizer, [text])
    worst = worst_tokens(cost, ledgers[1], n=5)
    excess = cost.bits - ledgers[1].bits
    spans = list(zip(cost.token_starts, cost.token_ends)) + [(len(text), len(text) + 1)]
    per_token = [excess[a:b].sum() for a, b in spans]  # bpe tokens never split a character here
    assert sorted(per_token, reverse=True)[:5] == pytest.approx([per_token[j] for j in worst])
    every = next_token_tables(model, tokenizer, text, top_k=3)
    some = next_token_tables(model, tokenizer, text, top_k=3, tokens=worst)
    assert [j for j, t in enumerate(some) if t is not None] == sorted(worst)
    assert all(some[j] == every[j] for j in worst)
    tables = hard_case_tables({"bpe": (model, tokenizer)}, stories[0], {"bpe": char_costs(model, tokenizer, stories[0])},
                              [1], ledgers, top_k=3, per_story=5)
    assert tables["bpe"][0] == some
    fragment = story_html(text, cost, ledgers[1], some)
    assert fragment.count("predicted here:") == 5
    with pytest.raises(ValueError, match="models"):
        hard_case_tables({"other": (model, tokenizer)}, stories[0], {"bpe": []}, [1])


# --- figures --------------------------------------------------------------------------------------------------------

def test_plot_helpers_draw_grouped_stacked_bars_intervals_and_context_lines():
    from storylab import plots

    fig = plots.bars({"a": [1.0, 2.0], "b": [0.5, -1.0]}, ["x", "y"], mode="relative",
                     errors={"a": ([0.5, 1.5], [1.2, 3.0])})
    assert fig.layout.barmode == "relative" and [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].error_y.array) == pytest.approx([0.2, 1.0]) and list(fig.data[0].error_y.arrayminus) == pytest.approx([0.5, 0.5])
    assert fig.data[1].error_y.array is None
    with pytest.raises(ValueError, match="mode"):
        plots.bars({"a": [1]}, ["x"], mode="pile")
    curve = plots.line({"a": [1.0, 2.0]}, x=[10, 100], log_x=True, markers=True, errors={"a": ([0, 1], [2, 3])})
    plots.vline(curve, 100, "n_ctx")
    assert curve.data[0].mode == "lines+markers" and curve.layout.shapes[0].x0 == 100
    assert curve.layout.annotations[0].x == pytest.approx(2.0)  # a label on a log axis is placed at log10(x)
    assert plots.vline(curve, None, "nothing") is curve and len(curve.layout.shapes) == 1


def test_notebook_figures_add_up_to_the_tables(models, stories, ledgers):
    from storylab.diagnostics import accuracy_bars, distance_curves, excess_bars, fuzz_curves, ledger_bars

    costs = {spec: char_costs(model, tok, stories[0]) for spec, (tok, model) in models.items() if spec in ("char", "word:150")}
    table = ledger_table(ledgers, costs)
    bars = ledger_bars(table)
    assert bars.data[0].name == "true bits (floor)" and bars.layout.barmode == "relative"
    tops = np.sum([np.asarray(trace.y) for trace in bars.data], axis=0)
    assert np.allclose(tops, table.groupby("model", sort=False)["model_bits_per_char"].sum().to_numpy())
    side = excess_bars(table, per_category_char=True)
    assert [t.name for t in side.data] == ["char", "word:150"] and list(side.data[0].x) == list(CATEGORY_NAMES)
    recalls = recall_table(ledgers, costs)
    curves = distance_curves(excess_by_distance(recalls, "tokens", by=("model",)), "tokens", {"t": (16, 32)})
    assert len(curves.data) == 2 and [s.x0 for s in curves.layout.shapes] == [32, 16]
    binned = excess_by_distance(recalls, "chars")
    pronouns = distance_curves(binned, "chars", category="pronoun")
    expected = binned[(binned["category"] == "pronoun") & (binned["model"] == "char")].sort_values("distance_to")
    assert np.allclose(pronouns.data[0].y, expected["mean_excess_bits"]) and "pronoun" in pronouns.layout.title.text
    with pytest.raises(ValueError, match="several categories"):
        distance_curves(binned, "chars")

    scored = pd.DataFrame({"model": ["a"] * 8 + ["b"] * 8, "phenomenon": ["p", "q"] * 8,
                           "inserted_sentences": [0, 0, 4, 4] * 4, "distance_chars": [10, 10, 90, 90] * 4,
                           "correct": [True] * 8 + [True, True, False, False] * 2})
    accuracy = pair_accuracy(scored)
    fig = accuracy_bars(accuracy)
    assert np.allclose(np.asarray(fig.data[0].y) + np.asarray(fig.data[0].error_y.array), accuracy["ci_high"][:2])
    by_distance = pair_accuracy(scored, by=("model", "inserted_sentences"))
    breaks = break_distance(by_distance)
    fuzz = fuzz_curves(by_distance, breaks)
    marks = fuzz.data[-1]
    assert marks.name == "break (at chance)" and list(marks.x) == breaks["break_inserted_sentences"].dropna().tolist()
    in_chars = fuzz_curves(by_distance, breaks, x="median_distance_chars", contexts={"t": (40, 80)})
    assert in_chars.layout.xaxis.type == "log"
    assert sorted(s.x0 for s in in_chars.layout.shapes if s.xref == "x") == [40, 80]  # beside the chance line
    with pytest.raises(ValueError, match="x"):
        fuzz_curves(by_distance, x="tokens")


# --- the models of finished runs -------------------------------------------------------------------------------------

RUN_CORPUS = {"source": "stories", "n_stories": 60, "validation": 10, "seed": 0}
OTHER_CORPUS = {"source": "stories", "n_stories": 60, "validation": 10, "seed": 1}  # another validation set


def write_run(folder, params: dict, metrics: dict, ended: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "status.json").write_text(json.dumps({"status": "finished", "ended": f"2026-01-01T00:00:0{ended}+00:00"}))


@pytest.fixture(scope="module")
def run_outputs(tmp_path_factory):
    """An outputs folder holding a 02_hmm run (a) and a 03_transformer run (b) of one validation set (the
    HMM trained on 40 of its stories, the transformer on all), a LATER 03 run on another validation set
    and a 04 run: what `models_from_runs` must choose from."""
    import os

    from storylab.corpora import corpus_spec
    from storylab.experiment import load_experiment

    folder = tmp_path_factory.mktemp("run_outputs")
    previous, os.environ["STORYLAB_OUTPUTS"] = os.environ["STORYLAB_OUTPUTS"], str(folder)
    try:
        runs = folder / "runs"
        exp = load_experiment(RUN_CORPUS, "char", rows=40)
        hmm = CategoricalHMM(3, exp.vocab_size, seed=0)
        hmm.fit(exp.train.sequences(), n_iter=1, progress=False)
        hmm.save(runs / "02_hmm" / "a" / "hmm")
        write_run(runs / "02_hmm" / "a", {"corpus": RUN_CORPUS, "tokenizer": "char", "rows": 40, "add_k": 0.5,
                                          "neural_bigram_steps": 2, "kn_orders": [2], "seed": 0},
                  {"corpus": exp.spec, "hmm_path": str(runs / "02_hmm" / "a" / "hmm"),
                   "models": [{"family": "hmm", "model": hmm.label}]}, "1")
        train(ModelConfig(n_layers=1, d_model=16, n_heads=2, n_ctx=32),
              TrainConfig(max_steps=2, warmup_steps=1, decay_steps=1, batch_size=2, eval_every=2, eval_tokens=128, save_every=2),
              exp.train.stream(), exp.validation.stream(), out_dir=runs / "03_transformer" / "b" / "model",
              tokenizer=exp.tokenizer, progress=False)
        write_run(runs / "03_transformer" / "b", {"corpus": RUN_CORPUS, "tokenizer": "char"},
                  {"corpus": corpus_spec(RUN_CORPUS), "tokenizer": "char", "model_path": str(runs / "03_transformer" / "b" / "model"),
                   "models": [{"family": "transformer", "model": "transformer L1 d16 h2"}]}, "2")
        write_run(runs / "03_transformer" / "other", {"corpus": OTHER_CORPUS, "tokenizer": "char"},
                  {"corpus": corpus_spec(OTHER_CORPUS), "models": []}, "3")
        write_run(runs / "04_interpretability" / "x", {"model_run": "b"}, {"induction_score_max": 0.1}, "4")
        yield folder
    finally:
        os.environ["STORYLAB_OUTPUTS"] = previous


def test_models_from_runs_default_to_the_latest_hmm_and_transformer_of_one_validation_set(run_outputs):
    from storylab.diagnostics import models_from_runs

    found = models_from_runs(baselines=["bigram", "kneser-ney"], device="cpu")
    assert [r.run_id for r in found.runs] == ["runs/02_hmm/a", "runs/03_transformer/b"]  # not the later "other"
    assert found.labels == ["HMM K=3", "bigram", "KN 2-gram", "transformer L1 d16 h2"]
    hmm = found["HMM K=3"]
    assert hmm.model.eot_id == hmm.tokenizer.eos_token_id and hmm.recorded_as == "HMM K=3" and hmm.run_id == "runs/02_hmm/a"
    assert found["bigram"].model.k == 0.5 and found["KN 2-gram"].model.order == 2  # the run's own add_k and kn_orders
    transformer = found["transformer L1 d16 h2"]
    assert transformer.n_ctx == 32 and found.contexts() == {transformer.label: (16, 32)}  # stride n_ctx // 2
    texts = found.validation_texts(4)
    assert len(texts) == 4 and found.is_stories and found.contexts("chars", texts) == {transformer.label: (16.0, 32.0)}
    for m in found.models:  # every model scores the same validation stories with its own tokenizer
        assert all(np.isfinite(c.nats).all() for c in char_costs(m.model, m.tokenizer, texts))
    assert found.compared_pair() == [transformer.label, "HMM K=3"]
    assert found.table()["run_id"].tolist() == ["runs/02_hmm/a"] * 3 + ["runs/03_transformer/b"]


def test_runs_are_named_by_folder_run_id_notebook_and_name_or_notebook(run_outputs):
    from storylab.diagnostics import models_from_runs, resolve_runs

    expected = ["runs/02_hmm/a", "runs/03_transformer/b"]
    for names in (expected, ["02_hmm/a", "03_transformer/b"], [str(run_outputs / "runs" / "02_hmm" / "a"), "03_transformer"]):
        assert [r.run_id for r in resolve_runs(names)] == expected
    assert [r.run_id for r in resolve_runs(["03_transformer", "02_hmm/a"])] == expected[::-1]  # in the order given
    alone = models_from_runs(["02_hmm/a"], baselines=[], device="cpu")
    assert alone.labels == ["HMM K=3"]
    with pytest.raises(ValueError, match="hard cases need two models"):
        alone.compared_pair()
    with pytest.raises(ValueError, match="hard_models: expected two different labels"):
        models_from_runs(["02_hmm/a"], baselines=["bigram"], device="cpu").compared_pair(["HMM K=3", "nope"])


@pytest.mark.parametrize("runs, baselines, message", [
    (["02_hmm/a", "03_transformer/other"], [], r"runs: not all on one validation set: runs/02_hmm/a on stories"),
    (["03_transformer/other", "02_hmm"], [], r"runs: no runs of 02_hmm on one validation set with the runs named"),
    (["nonsense"], [], r"runs: 'nonsense' is not a run folder, a run id"),
    (["02_hmm/missing"], [], r"runs: '02_hmm/missing': run 'missing': not a run folder"),
    (["runs/04_interpretability/x"], [], r"runs: 'runs/04_interpretability/x' is a 04_interpretability run"),
    ("02_hmm/a", [], r"runs: expected a list of run folders"),
    (["02_hmm/a"], ["trigram"], r"baselines: expected a list of some of"),
    (["02_hmm/a"], "bigram", r"baselines: expected a list of some of .*, got 'bigram'$"),  # not split into letters
])
def test_runs_that_cannot_be_used_are_one_line_errors(run_outputs, runs, baselines, message):
    from storylab.diagnostics import models_from_runs

    with pytest.raises(ValueError, match=message) as error:
        models_from_runs(runs, baselines=baselines, device="cpu")
    assert "\n" not in str(error.value)


def test_notebook_values_are_checked_in_one_line_before_any_compute(tmp_path):
    from storylab.diagnostics.checks import check_notebook_values
    from storylab.runner.params import notebook_parameters
    from storylab.paths import NOTEBOOKS_DIR

    defaults = {name: p.default for name, p in notebook_parameters(NOTEBOOKS_DIR / "06_diagnostics.ipynb").items()}
    assert check_notebook_values(dict(defaults), tmp_path) == defaults
    (tmp_path / "my_run").mkdir()
    checked = check_notebook_values({**defaults, "runs": ["my_run", "02_hmm/main", "runs/03_transformer/main"]}, tmp_path)
    assert checked["runs"] == [str(tmp_path / "my_run"), "02_hmm/main", "runs/03_transformer/main"]  # a folder made absolute
    for name, value in [("runs", []), ("baselines", ["trigram"]), ("phenomena", ["rhyme"]), ("fuzz_phenomena", ["closing quote"]),
                        ("n_val_stories", 0), ("inserted_sentences", [0, -2]), ("hard_models", ["a", "a"]), ("device", "gpu")]:
        with pytest.raises(ValueError, match=f"^{name}: ") as error:
            check_notebook_values({**defaults, name: value}, tmp_path)
        assert "\n" not in str(error.value)


def test_prefix_scoring_compares_only_the_text_before_the_change(models, stories):
    from storylab.diagnostics import pair_prefixes

    tokenizer, bigram = models["char"]
    pairs = fuzz_pairs(stories[0][:6], inserted=(0, 2), phenomena=["name recall", "pronoun agreement"], seed=1)
    scored = score_pairs(bigram, tokenizer, pairs, scope="prefix")
    for pair, row in zip(pairs, scored.itertuples()):
        good, bad = pair_prefixes(pair)
        at = pair["position"]
        assert good == pair["sentence_good"][:at] + pair["good_text"] + pair["sentence_good"][at + len(pair["good_text"])]
        assert bad.startswith(pair["sentence_bad"][:at] + pair["bad_text"]) and len(bad) == at + len(pair["bad_text"]) + 1
        ids = encode_texts(tokenizer, [good])[0]  # no end-of-text: the prefix is the beginning of a story
        assert row.good_nats == pytest.approx(bigram.token_nats([np.asarray(ids)])[0].sum())
    assert (scored["scope"] == "prefix").all()
    with pytest.raises(ValueError, match="scope"):
        score_pairs(bigram, tokenizer, pairs, scope="sentence")
