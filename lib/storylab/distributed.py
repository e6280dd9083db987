"""Several processes, one model: the torch.distributed set-up that training and EM share.

A process group comes from the engines this field already uses, never from home-made
cluster code: `torchrun --nproc_per_node N ...` (which exports RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT), or the N tasks of a SLURM job started through
submitit (`submitit.helpers.TorchDistributedEnvironment` exports the same variables).
`init_distributed()` reads them, picks NCCL on GPUs and gloo on CPUs (or the backend
named by `STORYLAB_DIST_BACKEND`), and gives each process its device (`cuda:<local
rank>`); `resolve_context` turns a `distributed=` argument into a group; `shard`,
`all_reduce_sum_`, `broadcast_` and `barrier` are the operations the EM and the training
loop need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist

from storylab.devices import resolve_device

T = TypeVar("T")
ENV_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
BACKEND_ENV = "STORYLAB_DIST_BACKEND"  # "gloo" to force it: e.g. two processes sharing one GPU, which NCCL refuses


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in its group (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and results; the others only compute."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def _export_slurm_environment() -> None:
    """Inside a submitit job of several tasks (SLURM, or submitit's local executor), set the
    env:// variables torchrun would."""
    in_submitit_job = "SLURM_JOB_ID" in os.environ or "SUBMITIT_LOCAL_JOB_ID" in os.environ  # a cluster, or its local executor
    if all(name in os.environ for name in ENV_VARIABLES) or not in_submitit_job:
        return
    from submitit.helpers import TorchDistributedEnvironment

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def init_distributed(device: str | torch.device = "auto", backend: str | None = None) -> DistributedContext:
    """Join the process group the launcher described; a plain single process when there is none."""
    _export_slurm_environment()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistributedContext(device=resolve_device(device))
    missing = [name for name in ENV_VARIABLES if name not in os.environ]
    if missing:
        raise ValueError(f"distributed: WORLD_SIZE > 1 but {', '.join(missing)} not set; launch with torchrun "
                         "or as a submitit SLURM job with several tasks")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group(backend or os.environ.get(BACKEND_ENV) or ("nccl" if resolved.type == "cuda" else "gloo"))
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, resolved)


def resolve_context(distributed: bool | DistributedContext, device) -> DistributedContext | None:
    """The process group a `distributed=` argument names: None for a plain single process,
    `init_distributed(device)` for True, a `DistributedContext` as given."""
    if isinstance(distributed, DistributedContext):
        return distributed
    if distributed is True:
        return init_distributed(device)
    if distributed is False or distributed is None:
        return None
    raise ValueError(f"distributed: expected True, False or a DistributedContext, got {distributed!r}")


def shard(items: Sequence[T], context: DistributedContext) -> list[T]:
    """This process's share of `items`: every `world_size`-th item from `rank` on."""
    return list(items[context.rank :: context.world_size])


def all_reduce_sum_(tensors: Sequence[torch.Tensor], context: DistributedContext) -> None:
    """Sum each tensor over the processes, in place (nothing to do for a single process)."""
    if context.active:
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def broadcast_(tensors: Sequence[torch.Tensor], context: DistributedContext) -> None:
    """Overwrite each tensor with rank 0's, in place (nothing to do for a single process)."""
    if context.active:
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def barrier(context: DistributedContext | None) -> None:
    """Wait until every process gets here (nothing to do for a single process)."""
    if context is not None and context.active:
        on_gpu = context.device.type == "cuda"  # NCCL wants to know the device, or it guesses and warns
        dist.barrier(device_ids=[context.device.index] if on_gpu else None)


def close_distributed(context: DistributedContext) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()
