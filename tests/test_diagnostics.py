"""The bits ledger, minimal pairs, hard cases and story-variable probes (storylab.diagnostics).

Models are small test doubles behind the LanguageModel interface (tests/lm_doubles.py):
count bigrams and unigrams on char, byte, BPE and word tokenizers.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from lm_doubles import CountLM
from storylab.corpora import story_grammar
from storylab.corpora.stories import (ARC_NAMES, filler_sentences, generate_stories, parse_story, story_arc,
                                      story_events, story_neg_log2_prob)
from storylab.corpora.story_categories import CATEGORIES, CHOSEN, FREE_CATEGORIES
from storylab.corpora.story_grammar import Options
from storylab.corpora.story_options import GENDER_OF
from storylab.diagnostics import (CATEGORY_NAMES, char_costs, excess_by_distance, ledger_table, recall_table,
                                  spread_token_nats, true_ledgers)
from storylab.diagnostics.hard_cases import hard_cases_html, hard_stories, next_token_tables, story_html, worst_positions
from storylab.diagnostics.pairs import (PHENOMENA, break_distance, corpus_names, fuzz_pairs, pair_accuracy,
                                        read_pairs_jsonl, score_pairs, story_pairs, text_name_pairs, wilson_interval,
                                        write_pairs_jsonl)
from storylab.interp import ResidualSample, story_probe_targets, story_sequences, story_variable_probes
from storylab.tokenizers import encode_texts, train_tokenizer

TOKENIZERS = ("char", "byte", "bpe:300", "word:150")
RELATIVE = 1e-9


@pytest.fixture(scope="module")
def stories():
    return generate_stories(24, seed=5)


@pytest.fixture(scope="module")
def ledgers(stories):
    return true_ledgers(stories[0])


@pytest.fixture(scope="module")
def models():
    """{tokenizer spec: (tokenizer, bigram)} fitted on other stories than the ones scored."""
    train, _ = generate_stories(120, seed=1)
    out = {}
    for spec in TOKENIZERS:
        tokenizer = train_tokenizer(spec, train)
        eot = tokenizer.eos_token_id
        seqs = [np.asarray(ids + [eot]) for ids in encode_texts(tokenizer, train)]
        out[spec] = (tokenizer, CountLM(len(tokenizer), eot, label=f"bigram {spec}").fit(seqs))
    return out


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

@pytest.mark.parametrize("spec", TOKENIZERS)
def test_model_ledger_sums_to_its_token_nats_for_every_tokenizer(spec, models, stories, ledgers):
    tokenizer, model = models[spec]
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
    assert hard_cases_html(stories[0], two_model_costs, [0], page=False).startswith('<div class="storylab-hard">')


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


def test_story_variable_probes_find_a_planted_signal_and_not_a_shuffled_one(models, stories):
    tokenizer, _ = models["bpe:300"]
    texts = stories[0][:16]
    sequences = story_sequences(tokenizer, texts, n_ctx=200)
    targets = story_probe_targets(tokenizer, texts, n_ctx=200)
    n = sum(map(len, sequences))
    generator = torch.Generator().manual_seed(0)
    resid = torch.randn(2, n, 8, generator=generator)
    resid[1, :, 0] += 4.0 * torch.as_tensor(np.maximum(targets["hero_gender"], 0), dtype=torch.float32)
    sample = ResidualSample(resid, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                            np.concatenate([np.arange(len(s)) for s in sequences]),
                            np.concatenate([np.full(len(s), i) for i, s in enumerate(sequences)]), ["embed", "after L0"])
    table = story_variable_probes(sample, targets, variables=["hero_gender"]).set_index("label")
    assert table.loc["after L0", "accuracy"] > 0.95 > table.loc["after L0", "shuffled_accuracy"]
    assert table.loc["embed", "accuracy"] < 0.8
    with pytest.raises(ValueError, match="targets"):
        story_variable_probes(sample, {"hero_gender": targets["hero_gender"][:-1]})


def test_model_diagnostics_flatten_figures_per_model(models, stories, ledgers):
    from storylab.diagnostics import model_diagnostics

    tokenizer, model = models["char"]
    table = ledger_table(ledgers, {"m": char_costs(model, tokenizer, stories[0])})
    accuracy = pd.DataFrame({"model": ["m"], "phenomenon": ["name recall"], "accuracy": [0.75]})
    breaks = pd.DataFrame({"model": ["m"], "break_inserted_sentences": [float("nan")], "break_median_distance_chars": [900.0]})
    figures = model_diagnostics(table, accuracy, breaks)["m"]
    assert figures["pair_accuracy/name recall"] == 0.75 and figures["break_inserted_sentences"] is None
    assert sum(v for k, v in figures.items() if k.startswith("excess_bits_per_char/")) == pytest.approx(
        table["excess_bits_per_char"].sum())
