"""Token bookkeeping for the analyses: readable labels, coarse token classes, special ids,
and the map from a `char` tokenizer's ids to an HMM corpus's token ids.

The `hmm` corpus writes HMM token k as character `alphabet[k]`; the `char` tokenizer sorts
the characters it saw and adds `<|endoftext|>` / `<unk>`, so tokenizer ids and HMM ids
differ. `alphabet_id_map` is the one place that translates between them.
"""

from __future__ import annotations

import string

import numpy as np

FUNCTION_WORDS = frozenset(
    "a an the and or but so then to of in on at by for with from up down into out over under "
    "he she it they we i you him her them us me his its their our my your "
    "is was are were be been am do did does have has had not no yes "
    "that this these those there here what who when where why how very too".split()
)
TOKEN_CLASSES = ("special", "whitespace", "punctuation", "digit", "name", "function word", "word", "letter")


def token_label(tokenizer, token_id: int) -> str:
    """The token's text with whitespace made visible (`␣` for a space, `\\n` for a newline)."""
    text = tokenizer.decode([int(token_id)])
    if text == "":
        text = tokenizer.convert_ids_to_tokens(int(token_id)) or f"<{token_id}>"
    return text.replace(" ", "␣").replace("\n", "\\n").replace("\t", "\\t")


def token_labels(tokenizer) -> list[str]:
    """`token_label` of every id in `range(len(tokenizer))`."""
    return [token_label(tokenizer, i) for i in range(len(tokenizer))]


def single_token_ids(tokenizer, texts) -> list[int]:
    """The ids of the texts that are one token each; the others are left out with a one-line warning."""
    import warnings

    encoded = {text: tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts}
    missing = [text for text, ids in encoded.items() if len(ids) != 1]
    if missing:
        warnings.warn(f"not single tokens of this tokenizer, left out: {missing}", stacklevel=2)
    return [ids[0] for ids in encoded.values() if len(ids) == 1]


def special_ids(tokenizer) -> list[int]:
    """Ids of the special tokens (end-of-text, unknown, ...), which carry no text."""
    return sorted({int(i) for i in tokenizer.all_special_ids if i is not None and i < len(tokenizer)})


def token_class(text: str, is_special: bool = False) -> str:
    """A coarse class of a token's (decoded) text, for colouring plots; one of TOKEN_CLASSES."""
    if is_special:
        return "special"
    stripped = text.strip()
    if stripped == "":
        return "whitespace"
    if all(c in string.punctuation for c in stripped):
        return "punctuation"
    if stripped.isdigit():
        return "digit"
    if stripped.isalpha():
        if len(stripped) == 1 and text == stripped:  # a bare character: char-level tokens
            return "letter"
        if stripped.lower() in FUNCTION_WORDS:
            return "function word"
        if stripped[0].isupper():
            return "name"
        return "word"
    return "word"


def token_classes(tokenizer) -> np.ndarray:
    """`token_class` of every id (an object array of length `len(tokenizer)`)."""
    specials = set(special_ids(tokenizer))
    return np.array([token_class(tokenizer.decode([i]), i in specials) for i in range(len(tokenizer))], dtype=object)


def alphabet_id_map(tokenizer, alphabet: str) -> np.ndarray:
    """(len(tokenizer),) int64: the HMM token id of each tokenizer id, −1 for tokens outside the alphabet.

    Fails when an alphabet character is not a single token of its own (the tokenizer is not
    character-level over this alphabet), since then no position-by-position map exists.
    """
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f"alphabet: expected a non-empty string of HMM token characters, got {alphabet!r}")
    mapping = np.full(len(tokenizer), -1, dtype=np.int64)
    for hmm_id, char in enumerate(alphabet):
        ids = tokenizer(char, add_special_tokens=False)["input_ids"]
        if len(ids) != 1 or tokenizer.decode(ids) != char:
            raise ValueError(
                f"tokenizer: HMM token {hmm_id} ({char!r}) is not one token of its own (got ids {ids}); "
                "belief-state probes need the 'char' tokenizer on an hmm corpus"
            )
        mapping[ids[0]] = hmm_id
    return mapping
