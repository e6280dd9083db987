"""The process-group set-up shared by distributed training and EM (gloo, 2 CPU processes)."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from storylab.distributed import DistributedContext, all_reduce_sum_, close_distributed, init_distributed, shard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, results) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    context = init_distributed("cpu")
    mine = shard(list(range(10)), context)
    total = torch.tensor([float(sum(mine))], dtype=torch.float64)
    all_reduce_sum_([total], context)
    results[rank] = (context.rank, context.world_size, context.is_main, mine, float(total))
    close_distributed(context)


def test_two_gloo_processes_shard_and_sum():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(2, free_port(), results), nprocs=2, join=True)
    assert results[0] == (0, 2, True, [0, 2, 4, 6, 8], 45.0)
    assert results[1] == (1, 2, False, [1, 3, 5, 7, 9], 45.0)


def test_a_single_process_is_rank_zero_of_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = init_distributed("cpu")
    assert context == DistributedContext(device=torch.device("cpu")) and context.is_main and not context.active
    values = [torch.ones(2)]
    all_reduce_sum_(values, context)
    assert values[0].tolist() == [1.0, 1.0] and shard([1, 2, 3], context) == [1, 2, 3]


def test_half_configured_environment_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="distributed: WORLD_SIZE > 1 but RANK, MASTER_ADDR, MASTER_PORT not set"):
        init_distributed("cpu")
