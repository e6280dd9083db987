"""The embedded story corpus: exact, recoverable probabilities and TinyStories-like text."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest

from storylab.corpora import load_corpus, story_arcs, story_grammar, story_options, story_words
from storylab.corpora.stories import (ARC_NAMES, STORY_ARCS, distinct_words, generate_stories, parse_story,
                                      sample_story, story_arc, story_neg_log2_prob)
from storylab.corpora.story_grammar import AmbiguousText, Options, compile_template, one_of

N_CORPUS = 3000  # stories for the corpus-level checks (vocabulary, lengths, arcs)
N_PARSED = 1500  # stories whose choices are recovered from their text


@pytest.fixture(scope="module")
def corpus():
    return generate_stories(N_CORPUS, seed=0)


@pytest.fixture(scope="module")
def samples():
    rng = random.Random(12345)
    return [sample_story(rng) for _ in range(N_PARSED)]


# --- the floor: probabilities are exact and the text determines the choices ----------------

def test_parse_recovers_the_exact_choices_and_probability_from_the_text(samples):
    for s in samples:
        parsed = story_grammar.parse(story_arcs.story, s.text)
        assert tuple(parsed.choices) == s.choices
        assert parsed.neg_log2_prob == pytest.approx(s.neg_log2_prob, abs=1e-9)
        assert parsed.result == s.arc


def test_no_two_choice_sequences_print_the_same_text(samples, corpus):
    # Every parse above already proves uniqueness for its text (the parser demands exactly one
    # fitting option at each choice); here we also check it over many independent draws.
    seen: dict[str, tuple] = {}
    rng = random.Random(777)
    for s in list(samples) + [sample_story(rng) for _ in range(2000)]:
        assert seen.setdefault(s.text, s.choices) == s.choices
    texts, _ = corpus
    assert len(set(texts)) == len(texts)  # the space of stories is large: no repeats in 3000


def test_public_parse_helpers_agree_with_the_sample(samples):
    s = samples[0]
    assert parse_story(s.text) == s.choices
    assert story_neg_log2_prob(s.text) == pytest.approx(s.neg_log2_prob, abs=1e-9)
    assert story_arc(s.text) == s.arc


def test_generate_stories_reports_the_exact_probability_of_each_text():
    texts, bits = generate_stories(40, seed=3)
    assert bits.dtype == np.float64 and bits.shape == (40,)
    for text, b in zip(texts, bits):
        assert story_neg_log2_prob(text) == pytest.approx(b, abs=1e-9)


def test_stories_corpus_floor_is_the_exact_entropy_of_its_validation_texts():
    # The oracle re-derives each story's probability from its text alone, so a floor taken
    # from the wrong split (or from the wrong numbers) cannot pass.
    spec = {"source": "stories", "n_stories": 30, "validation": 25, "seed": 2}
    for corpus in (load_corpus(spec), load_corpus({**spec, "rows": 12})):  # a rows view keeps fewer training stories
        for split, key in (("validation", "floor_bits_per_char"), ("train", "train_floor_bits_per_char")):
            texts = corpus.texts(split)
            oracle = sum(story_neg_log2_prob(t) for t in texts) / sum(len(t) for t in texts)
            assert corpus.meta[key] == pytest.approx(oracle, rel=1e-12), split
        assert corpus.floor_bits_per_char == corpus.meta["floor_bits_per_char"]
    assert len(corpus.texts("train")) == 12


def test_stories_streams_keep_validation_apart_from_every_training_set():
    """Growing the training set never changes the validation set, and no seed's validation
    stories are another seed's training stories (a seed sweep never trains on a validation set)."""
    corpora = {seed: load_corpus({"source": "stories", "n_stories": 4, "validation": 3, "seed": seed}) for seed in (0, 1, 2)}
    bigger = load_corpus({"source": "stories", "n_stories": 6, "validation": 3, "seed": 1})
    assert bigger.texts("validation") == corpora[1].texts("validation")
    assert bigger.texts("train")[:4] == corpora[1].texts("train")
    streams = {tuple(corpus.texts(split)[:3]) for corpus in corpora.values() for split in ("train", "validation")}
    assert len(streams) == 6


def test_a_text_no_story_can_print_is_rejected(samples):
    text = samples[0].text
    with pytest.raises(ValueError, match="parse"):
        parse_story(text.replace(".", "!", 1))
    with pytest.raises(ValueError, match="parse"):
        parse_story(text + " The end.")
    with pytest.raises(ValueError, match="text"):
        parse_story(42)


# --- the engine -----------------------------------------------------------------------------

def test_recorded_probability_is_the_product_of_the_chosen_options():
    def program(w):
        w.say_one(("A {x}.", "B {x}.", "C {x}."), x=Options(["cat", "dog"], weights=[3, 1]))
        w.branch((lambda w: w.say("Yes."), lambda w: w.say("No.")))

    for seed in range(20):
        text, choices, bits, _ = story_grammar.sample(program, random.Random(seed))
        p_x = 3 / 4 if "cat" in text else 1 / 4
        assert bits == pytest.approx(-math.log2(1 / 3 * p_x * 1 / 2))
        assert story_grammar.parse(program, text).choices == choices


def test_weighted_draws_follow_their_weights():
    options = Options(["a", "b", "c"], weights=[1, 2, 5])
    rng = random.Random(0)
    counts = np.bincount([options.draw(rng) for _ in range(8000)], minlength=3)
    assert np.allclose(counts / 8000, [1 / 8, 2 / 8, 5 / 8], atol=0.02)


def test_without_never_draws_the_excluded_option_and_is_uniform_over_the_rest():
    options = Options(["a", "b", "c", "d"])
    rest = options.without("b")
    rng = random.Random(0)
    counts = np.bincount([rest.draw(rng) for _ in range(6000)], minlength=4)
    assert counts[1] == 0
    assert np.allclose(counts[[0, 2, 3]] / 6000, 1 / 3, atol=0.03)
    assert rest.bits == pytest.approx(math.log2(3))


def test_parser_refuses_an_ambiguous_grammar():
    # "ice" and "ice cream" both fit "ice cream is cold.": the parser must refuse, not guess.
    def prefix_clash(w):
        w.say("{food} is cold.", food=Options(["ice", "ice cream"]))

    with pytest.raises(AmbiguousText):
        story_grammar.parse(prefix_clash, "ice cream is cold.")

    # Two story paths printing the same sentence.
    def same_text(w):
        w.branch((lambda w: w.say("Hi {who}.", who=one_of("Ann", "Bob")),
                  lambda w: w.say("Hi Ann.")))

    with pytest.raises(AmbiguousText):
        story_grammar.parse(same_text, "Hi Ann.")
    assert story_grammar.parse(same_text, "Hi Bob.").choices == [0, 1]


def test_slot_must_be_followed_by_a_non_word_character():
    with pytest.raises(ValueError, match="slot"):
        compile_template("{He} had two {toy}s.")
    with pytest.raises(ValueError, match="slot"):
        compile_template("{a}{b}.")
    assert compile_template("{hero}'s {toy}.") == (("hero",), "'s ", ("toy",), ".")


def test_options_reject_duplicates_and_empty_texts():
    with pytest.raises(ValueError, match="distinct"):
        Options(["cat", "dog", "cat"])
    with pytest.raises(ValueError, match="non-empty"):
        Options(["cat", ""])
    with pytest.raises(ValueError, match="weights"):
        Options(["cat", "dog"], weights=[1, 0])


def _all_module_options():
    return {name: value for name, value in vars(story_options).items() if isinstance(value, Options)}


def test_no_option_is_a_whole_word_prefix_of_another_in_the_same_list():
    for name, options in _all_module_options().items():
        for a in options.texts:
            for b in options.texts:
                if a != b and b.startswith(a):
                    assert b[len(a)].isalnum(), f"{name}: {a!r} is a whole-word prefix of {b!r}"


def test_names_are_distinct_and_never_other_words():
    names = story_words.GIRL_NAMES + story_words.BOY_NAMES + story_words.PET_NAMES
    assert len(set(names)) == len(names)
    other_words = set()
    for name, value in vars(story_words).items():
        if name.isupper() and not name.endswith("NAMES"):
            items = [x for xs in value.values() for x in xs] if isinstance(value, dict) else value
            for item in items:
                for text in (item if isinstance(item, tuple) else (item,)):
                    other_words |= set(re.findall(r"[a-z]+", text.lower()))
    assert not {n.lower() for n in names} & other_words
    assert len(story_words.GIRL_NAMES) >= 100 and len(story_words.BOY_NAMES) >= 100


# --- the corpus reads like TinyStories ------------------------------------------------------

def test_generation_is_deterministic_per_seed_and_prefix_stable():
    texts, bits = generate_stories(30, seed=7)
    again, again_bits = generate_stories(30, seed=7)
    assert texts == again and np.array_equal(bits, again_bits)
    assert generate_stories(10, seed=7)[0] == texts[:10]
    assert generate_stories(30, seed=8)[0] != texts
    assert generate_stories(0, seed=7)[0] == []


@pytest.mark.parametrize("kwargs, message", [
    ({"n_stories": -1}, "n_stories"), ({"n_stories": 2.5}, "n_stories"), ({"n_stories": "3"}, "n_stories"),
    ({"n_stories": 3, "seed": -1}, "seed"), ({"n_stories": 3, "seed": "a"}, "seed"),
])
def test_bad_arguments_are_one_line_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_stories(**kwargs)


def test_vocabulary_is_large(corpus):
    texts, _ = corpus
    assert len(distinct_words(texts)) >= 1500


def test_word_counts_and_paragraphs(corpus):
    texts, _ = corpus
    for text in texts:
        assert 60 <= len(text.split()) <= 300
        paragraphs = text.split("\n\n")
        assert len(paragraphs) >= 3 and all(p.strip() == p and p for p in paragraphs)


def test_text_is_plain_ascii_with_capitalised_sentences_and_balanced_quotes(corpus):
    texts, _ = corpus
    # A sentence starts after ". " or '." ' or a paragraph break. After "!" or "?" may come a
    # lowercase attribution ("Can I play too?" asked Mia. / Boom! went the thunder.).
    sentence_start = re.compile(r'(?:^|\. |\." |\n\n)"?([A-Za-z])')
    for text in texts[:500]:
        assert text.isascii() and "  " not in text and "\u201c" not in text
        assert all(c.isupper() for c in sentence_start.findall(text)), text
        for paragraph in text.split("\n\n"):
            assert paragraph.count('"') % 2 == 0, paragraph
            assert paragraph[-1] in '.!?"'


def test_at_least_ten_arcs_and_all_are_used(samples):
    assert len(STORY_ARCS) >= 10
    assert {s.arc for s in samples} == set(ARC_NAMES)


def _hero(text: str) -> str:
    first_sentence = re.split(r"(?<=[.!?]) ", text, maxsplit=1)[0]
    names = [w for w in re.findall(r"[A-Z][a-z]+", first_sentence) if w in story_options.GENDER_OF]
    assert len(set(names)) == 1, first_sentence
    return names[0]


def test_hero_name_and_pronouns_stay_consistent(corpus):
    texts, _ = corpus
    for text in texts[:1000]:
        hero = _hero(text)
        girl = story_options.GENDER_OF[hero] == "girl"
        paragraphs = text.split("\n\n")
        assert hero in paragraphs[-1] and hero in paragraphs[1]
        second_sentence = re.split(r"(?<=[.!?]) ", paragraphs[0])[1]
        assert second_sentence.startswith("She " if girl else "He ")
        # The introduction is about the hero alone: no pronoun of the other gender appears in it.
        wrong = {"he", "him", "his", "himself"} if girl else {"she", "her", "hers", "herself"}
        assert not wrong & set(re.findall(r"[a-z]+", paragraphs[0].lower())), paragraphs[0]


def test_names_and_objects_from_the_introduction_return_later(corpus):
    texts, _ = corpus
    toy_returns = 0
    for text in texts:
        intro, rest = text.split("\n\n", 1)
        assert rest.count(_hero(text)) >= 2
        toy = next(t for t in sorted(story_words.TOYS, key=len, reverse=True) if f" {t} " in intro
                   or f" {t}." in intro or f" {t} with" in intro)
        toy_returns += f" {toy}" in rest
    # The favourite toy (sentence four of the introduction) comes back in most stories.
    assert toy_returns / len(texts) > 0.5
