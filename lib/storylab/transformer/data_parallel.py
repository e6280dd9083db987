"""Training across processes: DistributedDataParallel, each process a share of every step's batch.

Under `torchrun --nproc_per_node N` (or N SLURM tasks through submitit, see
`distributed_train`), `train(..., distributed=True)` joins the process group
(`storylab.distributed.init_distributed`) and every process:

- builds the same model from the same seed (DDP also broadcasts rank 0's weights);
- draws the SAME global batch of step s as a single process would (`data.train_batch`,
  seeded with (seed, s)) and keeps its rows `rank::world_size`. With an equal number of
  rows per process, DDP's mean of the processes' mean gradients is the single-process
  mean gradient, so the run follows the single-process loss curve up to float rounding
  (`batch_size` must therefore be a multiple of the number of processes);
- after the all-reduced backward pass, clips and steps identically (the gradients are
  equal on every rank, so the weights stay equal).

Rank 0 alone evaluates, writes the logs, the TensorBoard events and the checkpoints; the
others wait at a barrier. A checkpoint holds the plain module's weights (never the DDP
wrapper's `module.` names) and the optimizer state, which are the same for any number of
processes, so a run can resume with a different world size. The mixture-of-experts load-
balancing loss is computed per process on its share of the batch, so an MoE run does not
follow the single-process curve exactly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from storylab.distributed import DistributedContext


def check_batch_split(batch_size: int, world_size: int) -> None:
    """Every process must take the same number of rows (module docstring): the one check of it, made by
    `train`, by `train_with_torchrun` before it starts processes, and by 03's parameter check."""
    if batch_size % world_size:
        raise ValueError(f"batch_size: {batch_size} windows do not split evenly over {world_size} processes; "
                         f"use a multiple of {world_size}")


def rank_share(batch: torch.Tensor, context: DistributedContext | None) -> torch.Tensor:
    """This process's rows of a global batch: every world_size-th row from its rank on."""
    if context is None or not context.active:
        return batch
    return batch[context.rank :: context.world_size]


def wrap_model(model: torch.nn.Module, context: DistributedContext | None,
               find_unused_parameters: bool = False) -> torch.nn.Module:
    """`model` in DistributedDataParallel (its gradients all-reduced), or itself for one process."""
    if context is None or not context.active:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def mean_over_ranks(value: torch.Tensor, context: DistributedContext | None) -> float:
    """The mean of a scalar over the processes (itself for one process)."""
    if context is None or not context.active:
        return value.item()
    total = value.detach().float().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.item() / context.world_size


def rank_zero_decides(flag: bool, context: DistributedContext | None) -> bool:
    """Rank 0's `flag` on every process: a time budget must end the run at the same step everywhere."""
    if context is None or not context.active:
        return flag
    decision = torch.tensor([int(flag)], device=context.device)
    dist.broadcast(decision, src=0)
    return bool(decision.item())
