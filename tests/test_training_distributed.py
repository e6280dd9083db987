"""Training across processes (gloo, 2 CPU processes): the single-process loss curve, and a resume in 1 process."""

import json
import os
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from storylab.distributed import DistributedContext, close_distributed, init_distributed
from storylab.tokenizers import train_tokenizer
from storylab.transformer import ModelConfig, TrainConfig, train

TEXTS = ["12 + 30 = 42;", "7 + 8 = 15;", "Once upon a time, Lily ran.", "Tim sat."] * 3
TINY = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=8)
RECIPE = TrainConfig(batch_size=4, base_lr=1e-2, min_lr=1e-3, warmup_steps=2, decay_steps=8, max_steps=12,
                     eval_every=3, eval_tokens=32, save_every=6, seed=1)
# float32 sums in another order (two half-batch means averaged by the all-reduce instead of one mean)
# differ by ~1e-7 per step; measured over these 12 steps, transformer and LSTM alike: train loss 2.4e-07
# (one float32 ulp of a loss near 3.5), validation loss 4.5e-08
LOSS_TOLERANCE = 1e-5


def tiny_data():
    tokenizer = train_tokenizer("char", TEXTS)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in TEXTS]
    stream = np.concatenate(ids).astype(np.uint16)
    return tokenizer, stream, stream[:40]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, folder: str, model_config: ModelConfig, returned) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    context = init_distributed("cpu")
    tokenizer, stream, val = tiny_data()
    result = train(model_config, replace(RECIPE, max_steps=6), stream, val, folder, tokenizer=tokenizer, progress=False,
                   distributed=context)
    returned[rank] = type(result).__name__
    close_distributed(context)


def rows(folder, name="train_log.jsonl"):
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


@pytest.mark.parametrize("model_config", [TINY, replace(TINY, architecture="lstm")], ids=["transformer", "lstm"])
def test_two_processes_follow_the_single_process_curve_and_their_checkpoint_resumes_in_one(tmp_path, model_config):
    tokenizer, stream, val = tiny_data()
    single = train(model_config, RECIPE, stream, val, tmp_path / "one", tokenizer=tokenizer, progress=False)
    returned = mp.Manager().dict()
    # fork, not spawn: the children inherit the imported library instead of importing it again (3 s, not 20 s);
    # safe here because the tests run torch with one thread (conftest), so no OpenMP pool is forked
    mp.start_processes(_worker, args=(2, free_port(), str(tmp_path / "two"), model_config, returned), nprocs=2, join=True,
                       start_method="fork")
    assert dict(returned) == {0: "TrainResult", 1: "NoneType"}  # rank 0 returns the result, the others None
    weights = load_file(str(tmp_path / "two" / "checkpoints" / "step_00000006" / "model.safetensors"))
    assert set(weights) == set(single.model.state_dict())  # the plain module's names, no DDP "module." prefix

    resumed = train(model_config, RECIPE, stream, val, tmp_path / "two", tokenizer=tokenizer, progress=False)  # 1 process
    one, two = rows(tmp_path / "one"), rows(tmp_path / "two")
    assert [r["step"] for r in two] == list(range(1, 13))
    train_gap = max(abs(a["train_loss"] - b["train_loss"]) for a, b in zip(one, two))
    val_gap = max(abs(a["val_loss"] - b["val_loss"]) for a, b in zip(rows(tmp_path / "one", "eval_log.jsonl"),
                                                                     rows(tmp_path / "two", "eval_log.jsonl")))
    print(f"largest loss difference, 2 processes then 1 vs 1 process: train {train_gap:.2e}, validation {val_gap:.2e}")
    assert train_gap < LOSS_TOLERANCE and val_gap < LOSS_TOLERANCE
    assert resumed.val_total_nats == pytest.approx(single.val_total_nats, rel=LOSS_TOLERANCE)
    assert [r["tokens_seen"] for r in two] == [r["tokens_seen"] for r in one]  # the global batch's tokens


def test_a_batch_that_does_not_split_over_the_processes_is_a_one_line_error(tmp_path):
    tokenizer, stream, val = tiny_data()
    two_processes = DistributedContext(rank=0, world_size=2)
    with pytest.raises(ValueError, match="^batch_size: 3 windows do not split evenly over 2 processes; use a multiple of 2$"):
        train(TINY, replace(RECIPE, batch_size=3), stream, val, tmp_path / "run", tokenizer=tokenizer,
              distributed=two_processes)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="^distributed: expected True, False or a DistributedContext"):
        train(TINY, RECIPE, stream, val, tmp_path / "run", tokenizer=tokenizer, distributed="yes")
