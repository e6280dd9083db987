"""The logs of a training run: JSONL files (the source of truth) and their TensorBoard view.

`train_log.jsonl` has one row per optimizer step, `eval_log.jsonl` one per evaluation.
A `storylab.tracking.Tracker` given to `train` receives the same numbers as they are
written, under these names (so TensorBoard groups them):

| JSONL field | TensorBoard scalar |
|---|---|
| train_loss, lr, grad_norm, tokens_per_s | train/loss, train/lr, train/grad_norm, train/tokens_per_s |
| peak_rss_mb, peak_gpu_mb | memory/peak_rss_mb, memory/peak_gpu_mb |
| aux_loss, expert_load[l][e] (mixture of experts) | moe/aux_loss, moe/layer{l}/expert{e}_load |
| val_loss, val_loss_restricted (eval log) | val/loss, val/loss_restricted |

A resumed run first replays the rows it keeps (those up to its checkpoint) into the
tracker, so a fresh event file shows the whole curve.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from storylab.cache import write_text_atomic

TRAIN_LOG = "train_log.jsonl"
EVAL_LOG = "eval_log.jsonl"
TENSORBOARD_NAMES = {
    "train_loss": "train/loss", "lr": "train/lr", "grad_norm": "train/grad_norm", "tokens_per_s": "train/tokens_per_s",
    "peak_rss_mb": "memory/peak_rss_mb", "peak_gpu_mb": "memory/peak_gpu_mb", "aux_loss": "moe/aux_loss",
    "val_loss": "val/loss", "val_loss_restricted": "val/loss_restricted",
}


def read_jsonl(path: Path, up_to_step: int | None = None) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows if up_to_step is None else [row for row in rows if row["step"] <= up_to_step]


def truncate_log(path: Path, up_to_step: int) -> None:
    """Drop log lines written after the checkpoint a resumed run restarts from."""
    rows = read_jsonl(path, up_to_step)
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def tensorboard_scalars(row: dict[str, Any]) -> dict[str, Any]:
    """The scalars of one log row under their TensorBoard names (see the module docstring)."""
    scalars = {name: row[field] for field, name in TENSORBOARD_NAMES.items() if field in row}
    for layer, shares in enumerate(row.get("expert_load") or []):
        scalars.update({f"moe/layer{layer}/expert{expert}_load": share for expert, share in enumerate(shares)})
    return scalars


def replay_logs(tracker, out_dir: Path) -> None:
    """Write the rows both logs of `out_dir` already hold into `tracker` (a resumed run)."""
    for name in (TRAIN_LOG, EVAL_LOG):
        rows = [{"step": row["step"], **tensorboard_scalars(row)} for row in read_jsonl(out_dir / name)]
        names = {key for row in rows for key in row} - {"step"}
        tracker.replay(rows, "step", {key: key for key in sorted(names)})
