"""What notebook 04 needs from a 03_transformer run besides the model: the corpus it was trained on."""

from __future__ import annotations

from typing import Any

from storylab.corpora import corpus_spec


def run_corpus_spec(run) -> dict[str, Any]:
    """The training corpus spec of a `storylab.runs.Run`: the `corpus` its metrics recorded (the
    normalised spec, if 03 saved one), else its `corpus` parameter with its `rows` option applied."""
    recorded = run.metrics.get("corpus")
    if isinstance(recorded, dict) and "source" in recorded:
        return corpus_spec(recorded)
    if "corpus" not in run.params:
        raise ValueError(f"model_run: {str(run.folder)!r} records no corpus (no 'corpus' parameter or metric)")
    rows = run.params.get("rows")
    return corpus_spec(run.params["corpus"], rows=rows if isinstance(rows, int) else None)


def check_same_tokenizer(hmm_run, tokenizer) -> None:
    """Fail unless the 02_hmm run `hmm_run` tokenized its text exactly as `tokenizer` does
    (same vocabulary, same ids): only then are the HMM's token ids the model's."""
    from storylab.tokenizers import get_tokenizer

    if "tokenizer" not in hmm_run.params:
        raise ValueError(f"hmm_run: {str(hmm_run.folder)!r} records no 'tokenizer' parameter")
    hmm_tokenizer = get_tokenizer(hmm_run.params["tokenizer"], run_corpus_spec(hmm_run))
    if hmm_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ValueError(
            f"hmm_run: {str(hmm_run.folder)!r} used another tokenizer ({hmm_run.params['tokenizer']!r}, "
            f"{len(hmm_tokenizer)} tokens) than the model ({len(tokenizer)} tokens); its states cannot be aligned with the model's tokens"
        )
