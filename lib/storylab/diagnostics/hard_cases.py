"""Hard cases across models: the stories one model gets far better than another, shown character
by character, and each model's worst predictions with their context.

    costs = {m.label: char_costs(m, tokenizer_of[m], texts) for m in models}   # any tokenizers
    hard = hard_stories(costs, "transformer", "hmm", n=3)        # where the transformer wins most
    tables = hard_case_tables({label: (model, tokenizer)}, texts, costs, hard["story"], ledgers)  # hover tables
    fragment = hard_cases_html(texts, costs, hard["story"], ledgers=ledgers, tables=tables, page=False)
    hard_cases_page(fragment)                                    # the same as a whole offline page
    worst_positions(texts, costs, ledgers, n=20)

Everything is per character (`ledger.CharCosts`), so models with different tokenizers sit
side by side. A *unit* is one token's characters, or several tokens' when byte-level
tokens split one character; a unit's bits are its characters' bits. Excess bits are model
bits minus the generator's true bits (`ledger.TrueLedger`) where the texts come from it,
else the model's bits. The HTML is offline and script-free: colour shows excess bits per
character; hovering a token shows its bits and, where a table was made (by default at each
story's worst tokens), what the model predicted there (its top next tokens).
"""

from __future__ import annotations

import html
import json
from typing import Sequence

import numpy as np
import pandas as pd

from storylab.checks import check_int
from storylab.diagnostics.ledger import CATEGORY_NAMES, CharCosts, TrueLedger
from storylab.tokenizers import encode_texts


def story_bits(costs: dict[str, Sequence[CharCosts]]) -> pd.DataFrame:
    """Total bits of every story under every model: one row per story, one column per model."""
    if not isinstance(costs, dict) or not costs:
        raise ValueError("costs: expected {model label: char_costs(...)} with at least one model")
    lengths = {len(per_story) for per_story in costs.values()}
    if len(lengths) != 1:
        raise ValueError(f"costs: every model must score the same stories, got story counts {sorted(lengths)}")
    return pd.DataFrame({label: [float(c.bits.sum()) for c in per_story] for label, per_story in costs.items()})


def hard_stories(costs: dict[str, Sequence[CharCosts]], model: str, other: str, n: int = 5) -> pd.DataFrame:
    """The `n` stories on which `model` beats `other` by the most bits (`advantage_bits` = other − model)."""
    check_int("n", n, minimum=1)
    for name, value in (("model", model), ("other", other)):
        if value not in costs:
            raise ValueError(f"{name}: expected one of {list(costs)}, got {value!r}")
    table = story_bits(costs)
    out = pd.DataFrame({"story": table.index, f"{model}_bits": table[model], f"{other}_bits": table[other],
                        "advantage_bits": table[other] - table[model]})
    return out.sort_values("advantage_bits", ascending=False).head(n).reset_index(drop=True)


def unit_spans(cost: CharCosts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, first token index) of each unit as arrays: a token's characters, merged with
    the next token's when they share a character (a byte-level token splitting a character)."""
    starts = np.asarray(cost.token_starts, dtype=np.int64)
    ends = np.maximum(np.asarray(cost.token_ends, dtype=np.int64), starts)
    if not len(starts):
        return starts, ends, starts
    # a token opens a unit unless it starts before the furthest end so far (the open unit's end)
    reach = np.maximum.accumulate(ends)
    first = np.flatnonzero(np.concatenate([[True], starts[1:] >= reach[:-1]]))
    return starts[first], np.maximum.reduceat(ends, first), first


def token_units(cost: CharCosts) -> list[tuple[int, int, int]]:
    """(start, end, first token index) of each unit (`unit_spans` as a list)."""
    return [(int(a), int(b), int(i)) for a, b, i in zip(*unit_spans(cost))]


def _excess(cost: CharCosts, ledger: TrueLedger | None) -> tuple[np.ndarray, np.ndarray]:
    """(model bits, true bits) per position; true bits are zeros without a ledger."""
    if ledger is not None and len(ledger.bits) != len(cost.nats):
        raise ValueError(f"ledgers: a ledger covers {len(ledger.bits) - 1} characters, the costs {len(cost.nats) - 1}")
    return cost.bits, (ledger.bits if ledger is not None else np.zeros(len(cost.nats)))


def unit_bits(cost: CharCosts, ledger: TrueLedger | None = None) -> dict[str, np.ndarray]:
    """Every unit of one story and then its end (the end-of-text prediction, at position n):
    `start`, `end`, `token` (first token index) and the `model_bits` and `true_bits` of its
    characters, as arrays (sums by cumulative sums: no Python loop over tokens)."""
    model_bits, true_bits = _excess(cost, ledger)
    n_chars = len(cost.nats) - 1
    starts, ends, tokens = unit_spans(cost)
    starts, ends = np.append(starts, n_chars), np.append(ends, n_chars + 1)
    sums = {}
    for name, bits in (("model_bits", model_bits), ("true_bits", true_bits)):
        cumulative = np.concatenate([[0.0], np.cumsum(bits)])
        sums[name] = cumulative[ends] - cumulative[starts]
    return {"start": starts, "end": ends, "token": np.append(tokens, len(cost.token_starts)), **sums}


def worst_positions(texts: Sequence[str], costs: dict[str, Sequence[CharCosts]],
                    ledgers: Sequence[TrueLedger] | None = None, n: int = 20, context_chars: int = 60) -> pd.DataFrame:
    """Each model's `n` units (tokens) with the most excess bits, with the text around them."""
    check_int("n", n, minimum=1)
    check_int("context_chars", context_chars)
    story_bits(costs)  # checks the shapes
    names = np.asarray(CATEGORY_NAMES, dtype=object)
    tables = []
    for label, per_story in costs.items():
        columns: dict[str, list[np.ndarray]] = {}
        for story, (_, cost) in enumerate(zip(texts, per_story)):
            ledger = ledgers[story] if ledgers is not None else None
            units = unit_bits(cost, ledger)
            units["story"] = np.full(len(units["start"]), story)
            units["category"] = (names[ledger.main_category()[units["start"]]] if ledger is not None
                                 else np.full(len(units["start"]), None, dtype=object))
            for name, values in units.items():
                columns.setdefault(name, []).append(values)
        table = pd.DataFrame({name: np.concatenate(parts) for name, parts in columns.items()})
        table["excess_bits"] = table["model_bits"] - table["true_bits"]
        tables.append(table.sort_values("excess_bits", ascending=False, kind="stable").head(n).assign(model=label))
    table = pd.concat(tables).sort_values("excess_bits", ascending=False, kind="stable")
    table = table[["model", "story", "start", "end", "model_bits", "true_bits", "excess_bits", "category"]]
    table["token"] = [texts[s][a:b] if a < len(texts[s]) else "<end of story>"
                      for s, a, b in zip(table["story"], table["start"], table["end"])]
    table["context"] = [_context(texts[s], a, b, context_chars) for s, a, b in zip(table["story"], table["start"], table["end"])]
    return table.reset_index(drop=True)


def _context(text: str, start: int, end: int, width: int) -> str:
    left = text[max(0, start - width):start].replace("\n", "⏎")
    middle = text[start:end].replace("\n", "⏎") if start < len(text) else "<end>"
    right = text[end:end + width // 3].replace("\n", "⏎")
    return f"…{left}⟦{middle}⟧{right}…"


def next_token_tables(model, tokenizer, text: str, top_k: int = 5,
                      tokens: Sequence[int] | None = None) -> list[list[tuple[str, float]] | None]:
    """What the model predicted before each token of `text` and before its end-of-text token:
    the `top_k` (token text, probability) pairs, one list per prediction (story tokens + 1).

    With `tokens` (indices, the end-of-text one being the number of story tokens), only those
    predictions are made and the others are None: `next_token_probs` re-reads the prefix at
    every call (an HMM's costs its length), so a long story's every table costs its square."""
    check_int("top_k", top_k, minimum=1)
    ids = encode_texts(tokenizer, [text])[0]
    wanted = range(len(ids) + 1) if tokens is None else {check_int("tokens", int(j), below=len(ids) + 1) for j in tokens}
    tables: list[list[tuple[str, float]] | None] = [None] * (len(ids) + 1)
    for j in sorted(wanted):
        probs = np.asarray(model.next_token_probs(np.asarray(ids[:j], dtype=np.int64)), dtype=np.float64)
        top = np.argsort(-probs, kind="stable")[:top_k]
        tables[j] = [(tokenizer.decode([int(t)]), float(probs[t])) for t in top]
    return tables


def worst_tokens(cost: CharCosts, ledger: TrueLedger | None = None, n: int = 40) -> list[int]:
    """Indices of the `n` tokens (the end-of-text one included) with the most excess bits in one story."""
    check_int("n", n, minimum=1)
    units = unit_bits(cost, ledger)
    excess = units["model_bits"] - units["true_bits"]
    return units["token"][np.argsort(-excess, kind="stable")[:n]].tolist()


def hard_case_tables(models: dict[str, tuple], texts: Sequence[str], costs: dict[str, Sequence[CharCosts]],
                     stories: Sequence[int], ledgers: Sequence[TrueLedger] | None = None, top_k: int = 5,
                     per_story: int = 40) -> dict[str, list]:
    """`tables` for `hard_cases_html`: for each model (label → (model, tokenizer)) and chosen story,
    the next-token tables at its `per_story` tokens with the most excess bits (None elsewhere)."""
    tables: dict[str, list] = {}
    for label, (model, tokenizer) in models.items():
        if label not in costs:
            raise ValueError(f"models: {label!r} has no costs; expected some of {list(costs)}")
        tables[label] = [next_token_tables(model, tokenizer, texts[s], top_k,
                                           worst_tokens(costs[label][s], ledgers[s] if ledgers is not None else None,
                                                        per_story))
                         for s in stories]
    return tables


_STYLE = """
.storylab-hard { font-family: system-ui, sans-serif; }
.storylab-hard .story { font: 14px/1.9 ui-monospace, monospace; white-space: pre-wrap; border: 1px solid #ddd;
  padding: 8px; margin: 4px 0 16px; }
.storylab-hard .u { position: relative; }
.storylab-hard .u .tip { display: none; position: absolute; left: 0; top: 1.6em; z-index: 10; background: #fff;
  border: 1px solid #888; padding: 4px 6px; font: 12px/1.3 ui-monospace, monospace; white-space: pre;
  box-shadow: 2px 2px 6px rgba(0,0,0,.2); }
.storylab-hard .u:hover .tip { display: block; }
.storylab-hard .u:hover { outline: 1px solid #333; }
.storylab-hard .legend span { padding: 0 6px; }
"""


_LEVELS = 10  # colour steps each way: characters carry a class, not an inline style, to keep pages small


def _colour(level: int) -> str:
    """White → red for bits lost beyond the truth (level > 0), white → blue below it."""
    fade = int(round(255 * (1 - abs(level) / _LEVELS)))
    return f"rgb(255,{fade},{fade})" if level >= 0 else f"rgb({fade},{fade},255)"


def _level(excess_bits: float, vmax_bits: float) -> int:
    return int(round(max(-1.0, min(1.0, excess_bits / vmax_bits)) * _LEVELS))


def _colour_classes() -> str:
    return "".join(f".storylab-hard .{_class(k)} {{ background: {_colour(k)}; }}\n" for k in range(-_LEVELS, _LEVELS + 1))


def _class(level: int) -> str:
    return f"p{level}" if level >= 0 else f"n{-level}"


def story_html(text: str, cost: CharCosts, ledger: TrueLedger | None = None,
               tables: Sequence[list[tuple[str, float]]] | None = None, vmax_bits: float = 8.0) -> str:
    """One story as an HTML fragment: each character coloured by excess bits; each token's tooltip
    shows its bits (and true bits and category with a ledger) and, with `tables`, the top next tokens."""
    model_bits, true_bits = _excess(cost, ledger)
    main = ledger.main_category() if ledger is not None else None
    if tables is not None and len(tables) != len(cost.token_starts) + 1:
        raise ValueError(f"tables: expected {len(cost.token_starts) + 1} next-token tables (tokens + end), got {len(tables)}")
    parts = []
    units = token_units(cost) + [(len(text), len(text), len(cost.token_starts))]
    for start, end, token in units:
        chars = []  # (colour class, character shown)
        for i in range(start, max(end, start + 1) if start == len(text) else end):
            shown = "⏎\n" if i < len(text) and text[i] == "\n" else (html.escape(text[i]) if i < len(text) else "⟂")
            chars.append((_class(_level(model_bits[i] - true_bits[i], vmax_bits)), shown))
        span = slice(start, max(end, start + 1))
        # one short line (every token carries one): the token, the model's bits, the truth's and the category
        shown_token = f"«{text[start:end].replace(chr(10), '⏎')}»" if start < len(text) else "end of story"
        truth = f" (true {true_bits[span].sum():.2f}, {CATEGORY_NAMES[main[start]]})" if ledger is not None else ""
        lines = [f"{shown_token} {model_bits[span].sum():.2f} bits{truth}"]
        if tables is not None and tables[token] is not None:
            lines.append("predicted here:")
            lines += [f"  {p:6.1%}  {json.dumps(t)}" for t, p in tables[token]]
        tip = f'<span class="tip">{html.escape(chr(10).join(lines))}</span>'
        if len(chars) == 1:  # a one-character token (every token of a char model) carries its colour itself
            parts.append(f'<span class="u {chars[0][0]}">{chars[0][1]}{tip}</span>')
        else:
            coloured = "".join('<span class="' + c + '">' + shown + "</span>" for c, shown in chars)
            parts.append(f'<span class="u">{coloured}{tip}</span>')
    return f'<div class="story">{"".join(parts)}</div>'


def hard_cases_html(texts: Sequence[str], costs: dict[str, Sequence[CharCosts]], stories: Sequence[int],
                    ledgers: Sequence[TrueLedger] | None = None, tables: dict[str, Sequence] | None = None,
                    title: str = "Hard cases", vmax_bits: float = 8.0, page: bool = True) -> str:
    """Self-contained HTML (no scripts, no external files): each chosen story under every model.
    `tables[label][j]` are `next_token_tables` for the j-th of `stories` (optional). `page=False`
    gives a fragment with its own style, to show inline in a notebook."""
    totals = story_bits(costs)
    stories = [check_int("stories", int(s), below=len(texts)) for s in stories]
    legend = "".join(f'<span class="{_class(_level(v, vmax_bits))}">{v:+g}</span>'
                     for v in (-vmax_bits, -vmax_bits / 2, 0, vmax_bits / 4, vmax_bits / 2, vmax_bits))
    what = "model bits − true bits" if ledgers is not None else "model bits"
    body = [f"<h2>{html.escape(title)}</h2>",
            f'<p class="legend">colour: {what} per character {legend} — hover a token for its bits and predictions</p>']
    for j, story in enumerate(stories):
        body.append(f"<h3>story {story}</h3>")
        for label, per_story in costs.items():
            story_tables = tables[label][j] if tables is not None and label in tables else None
            body.append(f"<h4>{html.escape(label)}: {totals[label][story]:.1f} bits</h4>")
            body.append(story_html(texts[story], per_story[story], ledgers[story] if ledgers is not None else None,
                                   story_tables, vmax_bits))
    fragment = f'<div class="storylab-hard"><style>{_STYLE}{_colour_classes()}</style>{"".join(body)}</div>'
    return hard_cases_page(fragment, title) if page else fragment


def hard_cases_page(fragment: str, title: str = "Hard cases") -> str:
    """A `hard_cases_html(..., page=False)` fragment as a whole offline page: a notebook builds the
    stories once and shows the fragment inline beside the saved page."""
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f"<body>{fragment}</body></html>")
