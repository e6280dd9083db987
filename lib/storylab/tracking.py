"""Live views of long runs: TensorBoard event files always, Weights & Biases on request.

    tracker = Tracker(run_dir() / "tensorboard" / "em", name="02_hmm/main", config=params, wandb=False)
    tracker.log(step, {"train/nats_per_token": 3.1, "val/nats_per_token": 3.2})
    tracker.close()

The JSONL logs (`train_log.jsonl`, the EM history) stay the source of truth; the event
files carry the same numbers as they are written, so `python -m storylab board`
(TensorBoard on `outputs/`) shows every run, finished or running, as curves. A resumed
run replays the rows it already has (`replay`) into a fresh event file, so its curves
are whole even though the killed attempt's folder is gone.

W&B is optional: with `wandb=True` the same scalars go to a W&B run named after the
storylab run, with the run's parameters as its config. It runs in offline mode unless
the user has logged in (an API key in `WANDB_API_KEY` or `~/.netrc`) or set
`WANDB_MODE` themselves, so nothing reaches for the network by surprise.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable

TRACKING_CHOICES = ("none", "wandb")  # TensorBoard is always on; `wandb` adds W&B
SWEEP_RUN_ENDED = "ended.txt"  # beside a sweep run's HParams events: when the run they describe ended


def _numeric(value: Any) -> float | None:
    """`value` as a finite float, or None for anything a curve cannot show."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy and torch scalars
        except (TypeError, ValueError):
            return None
    value = float(value)
    return value if math.isfinite(value) else None


def wandb_logged_in() -> bool:
    """Whether W&B has credentials here (then it may go online); never contacts the server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


class Tracker:
    """Scalars per step into TensorBoard event files under `folder` (and W&B when asked).

    `folder=None` makes a tracker that records nothing, so library loops can always call it.
    """

    def __init__(self, folder: str | Path | None, name: str = "", config: dict[str, Any] | None = None,
                 wandb: bool = False):
        self.folder = None if folder is None else Path(folder)
        self._writer = None
        self._wandb_run = None
        if self.folder is None:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(self.folder), flush_secs=10)
        if wandb:
            self._wandb_run = _start_wandb(self.folder, name, config or {})

    @property
    def active(self) -> bool:
        return self._writer is not None

    def log(self, step: int, scalars: dict[str, Any]) -> None:
        """Write every finite number of `scalars` at `step` (other values are skipped)."""
        if self._writer is None:
            return
        clean = {key: v for key, value in scalars.items() if (v := _numeric(value)) is not None}
        for key, value in clean.items():
            self._writer.add_scalar(key, value, global_step=int(step))
        if self._wandb_run is not None and clean:
            self._wandb_run.log(clean, step=int(step))

    def replay(self, rows: Iterable[dict[str, Any]], step_key: str, keys: dict[str, str]) -> None:
        """Write rows a resumed run already holds: `keys` maps a row field to its scalar name."""
        for row in rows:
            self.log(row[step_key], {name: row.get(field) for field, name in keys.items()})

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _start_wandb(folder: Path, name: str, config: dict[str, Any]):
    try:
        import wandb
    except ImportError:
        raise ValueError("tracking: 'wandb' needs the wandb package (pip install wandb)") from None
    mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
    return wandb.init(project=os.environ.get("WANDB_PROJECT", "storylab"), name=name or None, config=config,
                      dir=str(folder), mode=mode, reinit="create_new")


def check_tracking(tracking: str) -> bool:
    """The `tracking` parameter checked; True when W&B is asked for."""
    if tracking not in TRACKING_CHOICES:
        raise ValueError(f"tracking: expected one of {TRACKING_CHOICES} (TensorBoard is always on), got {tracking!r}")
    return tracking == "wandb"


def run_tracker_options(notebook: str, tracking: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `Tracker` arguments of the notebook run in progress (event files in `<run folder>/tensorboard/`),
    as a plain dict: what a training process started by torchrun needs to open the same tracker.
    Named `<notebook>/<run name>` (not after the temporary folder the runner builds the run in)."""
    from storylab.paths import run_dir
    from storylab.runs import run_name

    folder = run_dir()
    return {"folder": folder / "tensorboard", "name": f"{notebook}/{run_name(folder)}", "config": config,
            "wandb": check_tracking(tracking)}


def run_tracker(notebook: str, tracking: str, config: dict[str, Any] | None = None) -> Tracker:
    """The tracker of the notebook run in progress (see `run_tracker_options`)."""
    return Tracker(**run_tracker_options(notebook, tracking, config))


def hparam_value(value: Any) -> int | float | str | bool:
    """A swept value as TensorBoard's hparams accept it (lists and dicts as compact text)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    import json

    return json.dumps(value, separators=(",", ":"), default=str)


def write_sweep_run(folder: str | Path, swept: dict[str, Any], metrics: dict[str, Any], ended: str) -> bool:
    """One finished run of a sweep as a TensorBoard HParams entry in `folder` (its swept values
    and numeric metrics), so a sweep's runs line up in one table and one parallel-coordinates
    view. Written once per ending of the run (`ended`, from its status.json): False when
    `folder` already holds it; a run made again (other parameters, --force) replaces it."""
    import shutil
    import uuid

    from torch.utils.tensorboard import SummaryWriter

    folder = Path(folder)
    marker = folder / SWEEP_RUN_ENDED
    if marker.is_file() and marker.read_text() == ended:
        return False
    tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"  # a half-written entry is never seen
    numbers = {f"sweep/{key}": v for key, value in metrics.items() if (v := _numeric(value)) is not None}
    with SummaryWriter(log_dir=str(tmp)) as writer:
        writer.add_hparams({key: hparam_value(value) for key, value in swept.items()}, numbers, run_name=".")
    (tmp / SWEEP_RUN_ENDED).write_text(ended)
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(tmp, folder)
    return True
