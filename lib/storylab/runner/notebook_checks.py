"""Value checks per notebook that need no data, run before any run folder exists.

`CHECKS` maps a notebook stem to `check(values, base) -> values`: it receives every
parameter (defaults updated with the user's values, types already checked against the
parameters cell), raises a one-line `ParameterError` naming the parameter, and returns the
values with the paths a user gave (corpus files, earlier runs) made absolute against
`base`, the directory the command started in. The runner, the pipeline and sweep
pre-checks and each notebook's first cell (`storylab.notebook.begin`) all call
`check_values`, so a bad value fails the same way everywhere, before any compute.

A notebook without an entry is only type-checked. Checks import the library's heavier
modules (corpora, tokenizers, transformer configs) inside the function: the command line
must start fast, and only a run of that notebook pays for them.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from storylab.checks import (check_choices, check_device, check_number, check_positive, check_strings,
                             run_reference)
from storylab.paths import launch_dir, user_path
from storylab.readers import first_line
from storylab.runner.params import ParameterError, notebook_parameters, validate_parameters

Check = Callable[[dict[str, Any], Path], dict[str, Any]]


def effective_parameters(notebook: Path, overrides: dict[str, Any], base: Path | None = None,
                         hint: str = "") -> dict[str, Any]:
    """Every parameter of `notebook`: the cell's defaults updated with `overrides`, checked (names,
    types, the notebook's value checks), user paths made absolute against `base` (default: launch dir)."""
    declared = notebook_parameters(notebook)
    checked = validate_parameters(declared, overrides, notebook.stem, hint)
    values = {**{name: p.default for name, p in declared.items()}, **checked}
    return check_values(notebook.stem, values, base or launch_dir())


def check_values(notebook: str, values: dict[str, Any], base: Path) -> dict[str, Any]:
    """`values` checked by the notebook's entry in CHECKS (if any), paths made absolute."""
    check = CHECKS.get(notebook)
    if check is None:
        return dict(values)
    try:
        return check(dict(values), base)
    except ParameterError:
        raise
    except ValueError as error:  # the library's own one-line checks: `n_states: expected ...`
        raise ParameterError(f"{notebook}: {first_line(error)}") from None


# --- shared pieces ---------------------------------------------------------------------

def absolute_corpus(spec: Any, base: Path) -> Any:
    """A corpus spec with its file path made absolute (a bare path, or `path:` of a file / saved-HMM spec)."""
    from storylab.corpora.options import SHORTHANDS, SOURCE_DEFAULTS

    if isinstance(spec, str) and spec not in SHORTHANDS and spec not in SOURCE_DEFAULTS and not spec.startswith("hub:"):
        return str(user_path(spec, base))
    if isinstance(spec, dict) and isinstance(spec.get("path"), str) and spec.get("source") in ("file", "hmm"):
        return {**spec, "path": str(user_path(spec["path"], base))}
    return spec


def check_corpus(values: dict[str, Any], base: Path) -> None:
    """`corpus` (with `rows`): its path made absolute, then normalised (a missing file fails here)."""
    from storylab.corpora.options import normalize_spec

    if "corpus" not in values:
        return
    values["corpus"] = absolute_corpus(values["corpus"], base)
    spec = normalize_spec(values["corpus"])
    if values.get("rows") is not None:
        normalize_spec({**spec, "rows": values["rows"]})


def check_tokenizer(values: dict[str, Any]) -> None:
    from storylab.tokenizers import normalize_tokenizer_spec

    if "tokenizer" in values:
        normalize_tokenizer_spec(values["tokenizer"])


# --- one function per notebook ---------------------------------------------------------

def check_01_tokenizers(values: dict[str, Any], base: Path) -> dict[str, Any]:
    from storylab.tokenizers import DEFAULT_VOCAB, normalize_tokenizer_spec

    check_corpus(values, base)
    check_positive(values, "rows", optional=True)
    check_positive(values, "min_frequency")
    check_positive(values, "n_examples", minimum=0)
    kind = values.get("tokenizer_kind", "bpe")
    normalize_tokenizer_spec({"kind": kind})
    if kind in DEFAULT_VOCAB and "vocab_sizes" in values:
        sizes = values.get("vocab_sizes")
        if not isinstance(sizes, list) or not sizes:
            raise ValueError(f"vocab_sizes: expected a non-empty list of vocabulary sizes, got {sizes!r}")
        for size in sizes:
            normalize_tokenizer_spec({"kind": kind, "vocab_size": size, "min_frequency": values.get("min_frequency", 2)})
    return values


def check_02_hmm(values: dict[str, Any], base: Path) -> dict[str, Any]:
    check_corpus(values, base)
    check_tokenizer(values)
    check_positive(values, "rows", "max_len", optional=True)
    check_positive(values, "n_states", "n_iter", "top_tokens", "emission_blocks")
    check_positive(values, "seed", "max_new_tokens", "neural_bigram_steps", "belief_kl_sequences", minimum=0)
    if values.get("n_states", 1) % values.get("emission_blocks", 1):
        raise ValueError(f"emission_blocks: expected a divisor of n_states={values['n_states']} "
                         f"(each block holds n_states / emission_blocks states), got {values['emission_blocks']}")
    orders = values.get("kn_orders", [])
    if not isinstance(orders, list) or any(isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= 5 for k in orders):
        raise ValueError(f"kn_orders: expected a list of Kneser–Ney orders from 2 to 5, got {orders!r}")
    for name in ("tol", "smoothing", "add_k"):
        if name in values:
            check_number(name, values[name])
    if "temperature" in values:
        check_number("temperature", values["temperature"], strict=True)
    check_device(values)
    check_strings(values, "prompts", allow_empty=True)
    return values


def check_03_transformer(values: dict[str, Any], base: Path) -> dict[str, Any]:
    from storylab.transformer.config import ModelConfig, TrainConfig
    from storylab.transformer.data_parallel import check_batch_split

    check_corpus(values, base)
    check_tokenizer(values)
    check_positive(values, "rows", optional=True)
    for config in (ModelConfig, TrainConfig):  # each checks its own fields, one line naming the field
        config(**{f.name: values[f.name] for f in fields(config) if f.name in values})
    check_positive(values, "top_k_table", "processes")
    check_positive(values, "max_new_tokens", "addition_eval_problems", "belief_kl_sequences", minimum=0)
    check_positive(values, "eval_stride", optional=True)
    if values.get("eval_stride") is not None and values["eval_stride"] > values.get("n_ctx", values["eval_stride"]):
        raise ValueError(f"eval_stride: expected at most n_ctx={values['n_ctx']} (or None), got {values['eval_stride']}")
    check_batch_split(values.get("batch_size", 0), values.get("processes", 1))
    if values.get("objective") == "masked":
        check_strings(values, "fill_mask_texts", allow_empty=True)
        unmasked = [text for text in values.get("fill_mask_texts", []) if text.count("<mask>") != 1]
        if unmasked:
            raise ValueError(f"fill_mask_texts: each text needs exactly one <mask>, got {unmasked[0]!r}")
    if "temperature" in values:
        check_number("temperature", values["temperature"], strict=True)
    check_device(values)
    check_strings(values, "prompts", allow_empty=True)
    check_strings(values, "candidates", allow_empty=True)
    return values


def check_04_interpretability(values: dict[str, Any], base: Path) -> dict[str, Any]:
    for name in ("model_run", "hmm_run"):
        if name in values:
            values[name] = run_reference(values[name], base)
    check_positive(values, "n_val_stories", "n_freq_stories", "max_tokens_shown", "n_blocks", "n_neighbours",
                   "circuit_tokens", "positions_shown", "induction_half_len", "induction_batch", "pca_components")
    check_positive(values, "seed", minimum=0)
    check_positive(values, "pca_point", minimum=0, optional=True)
    if "probe_ridge" in values:
        check_number("probe_ridge", values["probe_ridge"])
    fraction = values.get("probe_test_fraction", 0.5)
    if not (isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0 < fraction < 1):
        raise ValueError(f"probe_test_fraction: expected a number between 0 and 1, got {fraction!r}")
    check_device(values)
    if values.get("neighbour_tokens") is not None:
        check_strings(values, "neighbour_tokens")
    return values


def check_05_compare(values: dict[str, Any], base: Path) -> dict[str, Any]:
    from storylab.metrics import MODEL_FAMILIES

    check_choices(values, "families", MODEL_FAMILIES, optional=True, allow_empty=True)
    check_positive(values, "max_rows")
    return values


def check_06_diagnostics(values: dict[str, Any], base: Path) -> dict[str, Any]:
    from storylab.diagnostics.checks import check_notebook_values

    return check_notebook_values(values, base)


CHECKS: dict[str, Check] = {
    "01_tokenizers": check_01_tokenizers,
    "02_hmm": check_02_hmm,
    "03_transformer": check_03_transformer,
    "04_interpretability": check_04_interpretability,
    "05_compare": check_05_compare,
    "06_diagnostics": check_06_diagnostics,
}
