"""Checkpoints of a training run: weights, optimizer state, RNG state and progress.

A checkpoint is a folder `checkpoints/step_<step>/` holding `model.safetensors`,
`optimizer.safetensors` (Adam's moment tensors) with `state.json` (step, tokens seen,
elapsed time, the optimizer's hyper-parameters) and `rng.safetensors` (torch's RNG
state). Folders are built under a temporary name and renamed into place, and older
ones are removed only after a newer one is complete, so a run killed at any moment
leaves a complete last checkpoint. No pickle: safetensors and JSON only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from storylab.cache import atomic_dir, write_json_atomic

CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def checkpoint_dirs(out_dir: str | Path) -> list[Path]:
    """The complete checkpoints of a run folder, oldest first."""
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(out_dir)
    return dirs[-1] if dirs else None


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{key}": value.detach().cpu().contiguous()
        for index, per_param in state["state"].items()
        for key, value in per_param.items()
        if isinstance(value, torch.Tensor)
    }
    scalars = {
        str(index): {key: value for key, value in per_param.items() if not isinstance(value, torch.Tensor)}
        for index, per_param in state["state"].items()
    }
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(s) for i, s in meta["scalars"].items()}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    out_dir: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, progress: dict[str, Any]
) -> Path:
    """Write the checkpoint of `progress["step"]` and drop the older ones; returns its folder."""
    step = int(progress["step"])
    final = Path(out_dir) / CHECKPOINTS / f"step_{step:08d}"
    optimizer_tensors, optimizer_meta = _optimizer_tensors(optimizer)

    def build(folder: Path) -> None:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
        save_file(optimizer_tensors, folder / "optimizer.safetensors")
        rng = {"torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["torch_cuda"] = torch.cuda.get_rng_state()
        save_file(rng, folder / "rng.safetensors")
        write_json_atomic(folder / "state.json", {**progress, "optimizer": optimizer_meta})

    atomic_dir(final, build)
    for older in checkpoint_dirs(out_dir)[:-1]:
        # rename first so a half-deleted folder can never look like a checkpoint
        trash = older.parent / f".trash-{older.name}-{uuid.uuid4().hex[:8]}"
        os.rename(older, trash)
        shutil.rmtree(trash, ignore_errors=True)
    return final


def read_safetensors(path: Path, what: str, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of `path`; a missing, truncated or foreign file is a one-line ValueError naming it."""
    if not path.is_file():
        raise ValueError(f"checkpoint: {path} does not exist; expected {what} (safetensors)")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"checkpoint: {path} is not a readable safetensors file ({reason}); expected {what}, the file may be truncated"
        ) from error


def load_weights(checkpoint: str | Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    return read_safetensors(Path(checkpoint) / "model.safetensors", "the model weights", device)


def load_checkpoint(
    checkpoint: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore model, optimizer and RNG state from `checkpoint`; returns its progress dict."""
    checkpoint = Path(checkpoint)
    device = next(model.parameters()).device
    model.load_state_dict(load_weights(checkpoint, device), strict=True)
    progress = json.loads((checkpoint / "state.json").read_text())
    optimizer_meta = progress.pop("optimizer")
    optimizer_tensors = read_safetensors(checkpoint / "optimizer.safetensors", "the optimizer's moment tensors")
    optimizer.load_state_dict(_optimizer_state(optimizer_tensors, optimizer_meta))
    rng = read_safetensors(checkpoint / "rng.safetensors", "the random-number generator state")
    torch.set_rng_state(rng["torch_cpu"])
    if "torch_cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["torch_cuda"])
    return progress
