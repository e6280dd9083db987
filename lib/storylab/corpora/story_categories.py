"""What each part of a story is, for the bits ledger: slot names grouped into readable categories.

A recorded parse (`story_grammar.parse(..., record=True)`) names every stretch of a story
by its slot or template. This module is the one table that turns those names into about a
dozen categories a researcher reads ("name introduced", "pronoun", "object", ...), and says
which earlier character each recalled value refers to, so the distance back to where it
was last printed can be measured. Story code is untouched: slot names already say what
they hold (`{toy}`, `{a_food}`, `{He}`).

Categories of characters that cost an ideal model nothing: "template" (fixed text),
"end of story" (the end-of-text position: no story is a prefix of another), and the three
recall categories (printed from a binding made earlier: free only for a model that
remembers it). All others hold the bits of choices.
"""

from __future__ import annotations

# In the order every ledger table and plot uses.
CATEGORIES: dict[str, str] = {
    "template": "fixed text of a sentence (0 bits)",
    "end of story": "the end-of-text position after the last character (0 bits)",
    "name recalled": "a character's name printed again (0 bits for a model that remembers)",
    "pronoun": "he/she, his/her, him/her, girl/boy agreeing with a character met earlier (0 bits if remembered)",
    "detail recalled": "the toy, a colour, the grown-up, a food ... printed again, or forced by an earlier choice (0 bits if remembered)",
    "name introduced": "a new character's name",
    "character": "who someone is: gender, traits, looks, relatives, helpers, age",
    "object": "toys, foods, gifts, tools, animals, games",
    "place": "towns, homes, places, rooms, furniture, spots",
    "feeling": "how someone feels, what they fear",
    "action": "what someone does and how: activities, movement, looking, adverbs",
    "detail": "times, weather, colours, sizes, adjectives, numbers, lessons",
    "dialogue": "speech verbs, exclamations, and which line of dialogue is said",
    "sentence variant": "which template prints a sentence (its wording)",
    "story path": "which arc the story follows, a pet or not, which small moment",
}
RECALL_CATEGORIES = ("name recalled", "pronoun", "detail recalled")
FREE_CATEGORIES = ("template", "end of story") + RECALL_CATEGORIES

# The category of a CHOSEN slot, by slot name.
CHOSEN: dict[str, str] = {
    **dict.fromkeys(["hero", "friend", "pet"], "name introduced"),
    **dict.fromkeys(["kind", "fkind", "a_trait", "trait", "hair", "a_smile", "rel", "rel2", "relative", "giver",
                     "a_helper", "age", "dear"], "character"),
    **dict.fromkeys(["toy", "a_toy", "a_food", "food", "drink", "gift", "cake", "tool", "tool2", "thing", "baked",
                     "ing", "ing2", "seed", "a_pet_kind", "a_animal", "a_animal2", "animal", "bird", "birds",
                     "favorite", "stuff", "game", "ride"], "object"),
    **dict.fromkeys(["town", "a_home", "near", "place", "room", "room2", "spot", "spot2", "where", "seat", "bed",
                     "light"], "place"),
    **dict.fromkeys(["good", "good2", "bad", "bad2", "weak", "yummy", "excited", "nice", "fear"], "feeling"),
    **dict.fromkeys(["act", "act_ing", "came", "looked", "saw", "laughed", "laughed_ing", "how", "slowly", "doing",
                     "action", "a_hug", "rule"], "action"),
    **dict.fromkeys(["time", "day", "sky", "breeze", "weather", "sound", "colour", "a_colour", "a_adj", "very",
                     "big", "little", "deep", "count", "number", "many", "sprout", "pieces", "adj", "a_song",
                     "lesson"], "detail"),
    **dict.fromkeys(["said", "asked", "exclaim", "problem"], "dialogue"),
}

# What a RECALLED slot refers to (slots not listed refer to the slot of their own name), and
# its category when it does not follow from that: names and pronouns; the rest is "detail recalled".
REFERS_TO: dict[str, str] = {
    **dict.fromkeys(["hero", "kind", "He", "he", "him", "his", "His", "himself"], "hero"),
    **dict.fromkeys(["friend", "fkind", "fhe", "fHe", "fhim", "fhis"], "friend"),
    **dict.fromkeys(["rel", "Rel"], "rel"),
    **dict.fromkeys(["act", "act_ing", "act_past"], "act"),
    **dict.fromkeys(["colour", "a_colour"], "colour"),
    **dict.fromkeys(["pet_kind", "a_pet_kind"], "pet_kind"),
    **dict.fromkeys(["baked", "was", "a_piece"], "baked"),
    "food": "a_food", "helper": "a_helper", "thing": "fear", "fix": "problem", "grown": "seed",
}
RECALLED: dict[str, str] = {
    **dict.fromkeys(["hero", "friend", "pet"], "name recalled"),
    **dict.fromkeys(["He", "he", "him", "his", "His", "himself", "fhe", "fHe", "fhim", "fhis", "kind", "fkind"],
                    "pronoun"),
}


def referent(slot: str) -> str:
    """Which binding a slot's text belongs to (`"he"` → `"hero"`), chosen or recalled."""
    return REFERS_TO.get(slot, slot)


def slot_category(slot: str, recalled: bool) -> str:
    """The ledger category of a slot's characters. An unlisted chosen slot is a "detail"."""
    if recalled:
        return RECALLED.get(slot, "detail recalled")
    return CHOSEN.get(slot, "detail")


def choice_category(kind: str, name: str) -> str:
    """The category of a choice event: a slot by its name, a template, or a story path."""
    if kind == "slot":
        return slot_category(name, recalled=False)
    if kind == "path":
        return "story path"
    return "dialogue" if '"' in name else "sentence variant"
