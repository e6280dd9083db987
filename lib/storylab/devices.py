"""Resolve the `device` parameter every computing function takes.

`check_device_name` checks how a device is written without importing torch (the runner's
parameter checks run before any compute, possibly on a login node without a GPU);
`resolve_device` then turns it into a `torch.device` where the work runs.
"""

from __future__ import annotations

from typing import Any

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")  # and "cuda:N"


def check_device_name(device: Any) -> Any:
    """`device` unchanged when it is None, a torch.device or a name like 'auto', 'cpu', 'cuda', 'cuda:N';
    else a one-line ValueError."""
    if device is None or type(device).__name__ == "device":
        return device
    if not (isinstance(device, str) and (device in DEVICE_NAMES or
                                         (device.startswith("cuda:") and device[5:].isdigit()))):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return device


def resolve_device(device: Any = "auto"):
    """`"auto"` (or None) means CUDA when present, else CPU; a `torch.device`."""
    import torch

    check_device_name(device)
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for but CUDA is not available here; use device='auto'")
    return resolved
