"""Train a `StoryTransformer` (or a `StoryRNN`) on a flat token stream, with logs, evaluation and checkpoints.

```python
result = train(ModelConfig(n_layers=4, d_model=128), TrainConfig(max_steps=2000),
               enc.train.stream(), enc.validation.stream(), out_dir=run_dir() / "model",
               tokenizer=enc.tokenizer)
result.log.plot(x="step", y="train_loss"); storylab.lm.score(result.lm, enc.validation)
```

The run folder (`out_dir`) receives `config.yaml`, `tokenizer/`, `train_log.jsonl`
(one line per step), `eval_log.jsonl` (one line per evaluation), `checkpoints/` and,
at the end, `result.json`. Calling `train` again on the same folder resumes from the
last checkpoint and ends with the same weights as an unbroken run (same device).

The objective options go through the same loop: `objective="masked"` trains a masked LM
(`masked`: the windows are corrupted BERT-style and validation is the masked-token
loss), `output_rule` restricts the loss to a rule's valid tokens (`output_rules`; the
eval log adds `val_loss_restricted`, `val_loss` stays the full softmax), and an MoE
model adds `aux_loss_weight` × its load-balancing loss (`moe`; the train log adds
`aux_loss` and `expert_load`, the share of assignments per expert of each MoE layer).
`architecture="lstm"` / `"gru"` trains a recurrent model (`rnn`) through the same loop;
its evaluations read the validation stream in one pass, carrying the state.

Live curves: `train(..., tracker=storylab.tracking.Tracker(folder))` writes every log
row to TensorBoard as well (`training_logs` lists the names); the JSONL files stay the
source of truth, and a resumed run replays the rows it keeps into the tracker first.
Several processes: `train(..., distributed=True)` under torchrun (`data_parallel`;
`distributed_train.train_with_torchrun` launches it from a notebook).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from storylab.cache import atomic_dir, write_json_atomic, write_text_atomic
from storylab.devices import resolve_device
from storylab.distributed import DistributedContext, barrier, close_distributed, resolve_context
from storylab.lm import LanguageModel
from storylab.metrics import LN2, peak_rss_mb
from storylab.progress import progress_bar
from storylab.transformer.architectures import build_model, is_recurrent, wrap_language_model
from storylab.transformer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from storylab.transformer.config import ModelConfig, TrainConfig
from storylab.transformer.data import check_stream, train_batch
from storylab.transformer.data_parallel import check_batch_split, mean_over_ranks, rank_share, rank_zero_decides, wrap_model
from storylab.transformer.masked import mask_windows, masked_evaluate, step_rng, with_mask_token
from storylab.transformer.moe import moe_aux_loss, moe_expert_load
from storylab.transformer.output_rules import check_rule_fits, make_output_rule
from storylab.transformer.rnn import recurrent_evaluate
from storylab.transformer.schedule import learning_rate
from storylab.transformer.scoring import default_stride, evaluate, restricted_cross_entropy
from storylab.transformer.training_logs import (EVAL_LOG, TRAIN_LOG, read_jsonl, replay_logs, tensorboard_scalars,
                                                truncate_log)

RESULT_FILE = "result.json"
# fields that change when or how often a run stops, logs or saves, not what it computes:
# a resumed run may change them (e.g. to train a finished run for longer)
_RESUMABLE_CHANGES = {"max_steps", "max_minutes", "eval_every", "eval_tokens", "save_every"}


@dataclass
class TrainResult:
    """What a training run produced: the model, its logs as DataFrames and summary figures."""

    model: torch.nn.Module  # a StoryTransformer, or a StoryRNN for a recurrent architecture
    model_config: ModelConfig
    train_config: TrainConfig
    out_dir: Path
    log: pd.DataFrame  # one row per step: step, train_loss, lr, grad_norm, tokens_seen, elapsed_s, tokens_per_s,
    # peak_rss_mb (and peak_gpu_mb on CUDA)
    eval_log: pd.DataFrame  # one row per evaluation: step, tokens_seen, elapsed_s, val_loss
    # the final evaluation, over the whole validation stream as one sequence, each token once
    # (all three None when train(..., final_eval=False) skipped it: score `lm` per story instead)
    val_total_nats: float | None
    val_n_tokens: int | None
    val_stride: int | None  # the sliding window's step in it (None: a recurrent model reads in one pass, a masked
    # LM scores whole windows, or no final evaluation)
    eot_id: int | None
    n_params: int
    train_tokens: int
    train_tokens_per_s: float  # optimizer steps only (no evaluation or saving), this session
    elapsed_s: float  # wall clock over all sessions of the run
    peak_rss_mb: float  # of this process (rank 0 of several), host memory
    peak_gpu_mb: float | None = None  # CUDA memory allocated at the peak, on CUDA only

    @property
    def lm(self) -> LanguageModel:
        """The trained model as a `storylab.lm.LanguageModel` (score it per story with `storylab.lm.score`):
        a `TransformerLM`, or an `RNNLM` for a recurrent architecture."""
        if self.eot_id is None:
            raise ValueError("eot_id: this run was trained without an end-of-text id (no tokenizer, no eot_id)")
        return wrap_language_model(self.model, self.eot_id, train_tokens=self.train_tokens)

    @property
    def val_loss(self) -> float | None:
        """Validation nats per token (the end-of-text tokens included; for a masked LM, per masked token);
        None without a final evaluation."""
        return None if self.val_total_nats is None else self.val_total_nats / self.val_n_tokens

    def val_bits_per_char(self, n_chars: int) -> float:
        """Validation bits per character, given the validation split's character count."""
        if self.model_config.objective == "masked":
            raise ValueError("val_bits_per_char: a masked LM gives no probability of the text; use val_loss (nats per masked token)")
        if self.val_total_nats is None:
            raise ValueError("val_bits_per_char: this run skipped its final evaluation (final_eval=False); "
                             "score result.lm with storylab.lm.score")
        return self.val_total_nats / LN2 / n_chars

    def summary(self) -> dict[str, Any]:
        return {
            "val_nats_per_token": self.val_loss,
            "val_total_nats": self.val_total_nats,
            "val_n_tokens": self.val_n_tokens,
            "val_stride": self.val_stride,
            "n_params": self.n_params,
            "train_tokens": self.train_tokens,
            "train_tokens_per_s": self.train_tokens_per_s,
            "elapsed_s": self.elapsed_s,
            "peak_rss_mb": self.peak_rss_mb,
            "peak_gpu_mb": self.peak_gpu_mb,
        }


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the activation-multiplying matrices only (see TrainConfig)."""
    decayed, plain = [], []
    for name, param in model.named_parameters():
        is_matrix = param.ndim == 2 and not name.startswith(("tok_embed", "pos"))
        (decayed if is_matrix else plain).append(param)
    groups = [
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.base_lr, betas=(config.beta1, config.beta2))


def write_run_config(out_dir: Path, model_config: ModelConfig, train_config: TrainConfig) -> None:
    text = yaml.safe_dump({"model": model_config.to_dict(), "train": train_config.to_dict()}, sort_keys=False)
    write_text_atomic(out_dir / "config.yaml", text)


def read_run_config(out_dir: str | Path) -> tuple[ModelConfig, TrainConfig]:
    path = Path(out_dir) / "config.yaml"
    if not path.exists():
        raise ValueError(f"path: {str(out_dir)!r} is not a transformer run folder (no config.yaml)")
    data = yaml.safe_load(path.read_text())
    return ModelConfig.from_dict(data["model"]), TrainConfig.from_dict(data["train"])


def _check_resumable(out_dir: Path, model_config: ModelConfig, train_config: TrainConfig) -> None:
    saved_model, saved_train = read_run_config(out_dir)
    if saved_model != model_config:
        raise ValueError(f"model_config: {out_dir} holds a run of a different model {saved_model}; use another out_dir")
    changed = {k for k, v in asdict(train_config).items() if asdict(saved_train)[k] != v} - _RESUMABLE_CHANGES
    if changed:
        raise ValueError(
            f"train_config: {out_dir} holds a run with different {sorted(changed)}; resuming may only change "
            f"{sorted(_RESUMABLE_CHANGES)}; use another out_dir"
        )


def _save_tokenizer(out_dir: Path, tokenizer) -> None:
    if tokenizer is not None:
        atomic_dir(out_dir / "tokenizer", tokenizer.save_pretrained)


def _peak_memory(device: torch.device) -> dict[str, float]:
    memory = {"peak_rss_mb": peak_rss_mb()}
    if device.type == "cuda":
        memory["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return memory


def _check_inputs(model_config, train_config, train_stream, val_stream, vocab_size, tokenizer, eot_id):
    """The model config with its vocabulary, the eot id and the streams as arrays, all checked."""
    if not isinstance(model_config, ModelConfig):
        raise ValueError(f"model_config: expected a ModelConfig, got {type(model_config).__name__}")
    if not isinstance(train_config, TrainConfig):
        raise ValueError(f"train_config: expected a TrainConfig, got {type(train_config).__name__}")
    if vocab_size is None:
        vocab_size = len(tokenizer) if tokenizer is not None else model_config.d_vocab
    if vocab_size is None:
        raise ValueError("vocab_size: expected the vocabulary size (or a tokenizer), got None")
    if tokenizer is not None and len(tokenizer) != vocab_size:
        raise ValueError(f"vocab_size: {vocab_size} differs from len(tokenizer)={len(tokenizer)}")
    if eot_id is None and tokenizer is not None:
        eot_id = tokenizer.eos_token_id
    if eot_id is not None and not 0 <= eot_id < vocab_size:
        raise ValueError(f"eot_id: expected a token id in [0, {vocab_size}), got {eot_id}")
    model_config = model_config.with_vocab(vocab_size)
    train_stream = check_stream("train_stream", train_stream, vocab_size, model_config.n_ctx + 1)
    val_stream = check_stream("val_stream", val_stream, vocab_size, 1)
    return model_config, eot_id, train_stream, val_stream


def warn_short_warmup(config: TrainConfig) -> None:
    """Warn (one line) when the run ends before its warm-up does, so the learning rate never peaks.

    A warning rather than a shorter warm-up: the schedule of step s must not depend on
    `max_steps`, which a resumed run may raise (training a finished run for longer), or
    the resumed run would retrace steps it already took with other learning rates.
    """
    if config.max_steps is not None and config.max_steps < config.warmup_steps:
        peak = config.base_lr * config.max_steps / config.warmup_steps
        warnings.warn(
            f"warmup_steps: max_steps={config.max_steps} ends before the {config.warmup_steps}-step warm-up, so the "
            f"learning rate peaks at {peak:.3g}, not base_lr={config.base_lr:g}; set warmup_steps <= max_steps",
            UserWarning, stacklevel=3)


def _prepare_objective(model_config, train_config, tokenizer):
    """The model config with its mask id and the tokenizer with `<mask>` (masked LM), checked."""
    if model_config.objective != "masked":
        return model_config, tokenizer
    if train_config.output_rule is not None:
        raise ValueError("output_rule: restricts next-token predictions; a masked LM (objective='masked') has none")
    if tokenizer is None:
        if model_config.mask_id is None:
            raise ValueError("mask_id: a masked LM trained without a tokenizer needs mask_id (an id the streams never use)")
        return model_config, tokenizer
    if tokenizer.mask_token is None and model_config.d_vocab == len(tokenizer):
        raise ValueError(f"d_vocab: a masked LM's vocabulary includes the <mask> token added to the tokenizer "
                         f"({len(tokenizer) + 1} tokens); pass d_vocab=None or len(with_mask_token(tokenizer))")
    tokenizer = with_mask_token(tokenizer)
    if model_config.mask_id not in (None, tokenizer.mask_token_id):
        raise ValueError(f"mask_id: the config says {model_config.mask_id} but the tokenizer's mask token is {tokenizer.mask_token_id}")
    return replace(model_config, mask_id=tokenizer.mask_token_id), tokenizer


def _check_objective_streams(model_config, train_config, train_stream, val_stream, rule) -> None:
    if model_config.objective == "masked":
        scored = min(len(val_stream), train_config.eval_tokens or len(val_stream))
        if scored < model_config.n_ctx:
            raise ValueError(f"val_stream: a masked LM scores whole windows of n_ctx={model_config.n_ctx} tokens; "
                             f"got {scored} (validation tokens, capped by eval_tokens)")
    if rule is not None:  # a rule that forbids the data's own tokens would make the loss infinite
        check_rule_fits(rule, train_stream)


def train(
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_stream,
    val_stream,
    out_dir: str | Path,
    vocab_size: int | None = None,
    tokenizer=None,
    eot_id: int | None = None,
    device: str | torch.device = "auto",
    resume: bool = True,
    progress: bool = True,
    tracker=None,
    distributed: bool | DistributedContext = False,
    final_eval: bool = True,
) -> TrainResult | None:
    """Train (or resume training) a model; see the module docstring for the run folder.

    `vocab_size` defaults to `len(tokenizer)`; `eot_id` (the end-of-text id put before
    the validation stream so its first token is scored too) to `tokenizer.eos_token_id`.
    With `resume=False` an `out_dir` that already holds checkpoints is an error rather
    than being overwritten. `tracker` (a `storylab.tracking.Tracker`) receives every log
    row as TensorBoard scalars; the caller opens and closes it.

    `distributed=True` joins the process group torchrun (or a submitit SLURM job) set up,
    on each process's own device (`device` picks CUDA or CPU); a `DistributedContext`
    from `storylab.distributed.init_distributed()` names one the caller already joined
    (and then keeps: only a group `train` joined itself is left at the end). Every process
    passes the same arguments; rank 0 writes the run folder and the tracker and returns
    the TrainResult, the other ranks return None (`data_parallel` explains the batches).

    `final_eval=False` skips the final pass over the whole validation stream (the result's
    `val_*` fields are then None): for a caller that scores the model itself, per story with
    `storylab.lm.score(result.lm, ...)`, and would otherwise read the validation text twice
    and report two different numbers. The periodic evaluations of the eval log are kept.
    """
    if not isinstance(final_eval, bool):
        raise ValueError(f"final_eval: expected True or False, got {final_eval!r}")
    model_config, tokenizer = _prepare_objective(model_config, train_config, tokenizer)
    model_config, eot_id, train_stream, val_stream = _check_inputs(
        model_config, train_config, train_stream, val_stream, vocab_size, tokenizer, eot_id
    )
    rule = make_output_rule(train_config.output_rule, tokenizer)
    _check_objective_streams(model_config, train_config, train_stream, val_stream, rule)
    out_dir = Path(out_dir)
    checkpoint = latest_checkpoint(out_dir)
    if checkpoint is not None:
        if not resume:
            raise ValueError(f"out_dir: {out_dir} already holds a run; pass resume=True or choose an empty folder")
        _check_resumable(out_dir, model_config, train_config)
    context = resolve_context(distributed, device)  # after every check: a bad argument never joins a group
    try:
        if context is not None:
            check_batch_split(train_config.batch_size, context.world_size)
        return _train_in(context, model_config, train_config, train_stream, val_stream, out_dir, tokenizer, eot_id,
                         rule, checkpoint, resolve_device(device) if context is None else context.device,
                         progress, tracker, final_eval)
    finally:
        if distributed is True:
            close_distributed(context)


def _train_in(context, model_config, train_config, train_stream, val_stream, out_dir, tokenizer, eot_id, rule,
              checkpoint, device, progress, tracker, final_eval=True) -> TrainResult | None:
    """`train` once the inputs are checked and the processes (if several) joined."""
    is_main = context is None or context.is_main
    if is_main:
        warn_short_warmup(train_config)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(out_dir, model_config, train_config)
        _save_tokenizer(out_dir, tokenizer)
    model = build_model(model_config, seed=train_config.seed).to(device)
    optimizer = make_optimizer(model, train_config)
    state = {"step": 0, "tokens_seen": 0, "elapsed_s": 0.0}
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model, optimizer)
    if is_main:
        for log_name in (TRAIN_LOG, EVAL_LOG):
            truncate_log(out_dir / log_name, state["step"])
        if tracker is not None and state["step"]:
            replay_logs(tracker, out_dir)
    loop = _TrainingLoop(model, optimizer, train_config, train_stream, val_stream, eot_id, device, out_dir, state,
                         rule=rule, context=context, tracker=tracker if is_main else None)
    loop.run(progress and is_main)
    if not is_main:
        barrier(context)  # until rank 0 has written the final evaluation and result.json
        return None
    total_nats, n_tokens, stride = None, None, None
    if final_eval:
        total_nats, n_tokens = _final_evaluation(model, model_config, train_config, val_stream, eot_id)
        # only a causal transformer slides a window over the stream; a masked LM scores whole windows
        sliding = not is_recurrent(model_config) and model_config.objective == "causal"
        stride = default_stride(model_config.n_ctx) if sliding else None
    result = TrainResult(
        model=model.eval(),
        model_config=model_config,
        train_config=train_config,
        out_dir=out_dir,
        log=pd.DataFrame(read_jsonl(out_dir / TRAIN_LOG)),
        eval_log=pd.DataFrame(read_jsonl(out_dir / EVAL_LOG)),
        val_total_nats=total_nats,
        val_n_tokens=n_tokens,
        val_stride=stride,
        eot_id=eot_id,
        n_params=model.n_params,
        train_tokens=loop.state["tokens_seen"],
        train_tokens_per_s=loop.session_tokens / loop.session_train_s if loop.session_train_s else float("nan"),
        elapsed_s=loop.state["elapsed_s"],
        **_peak_memory(device),
    )
    write_json_atomic(out_dir / RESULT_FILE, {"step": loop.state["step"], "eot_id": eot_id, **result.summary()})
    if tracker is not None:
        tracker.flush()
    barrier(context)
    return result


def _final_evaluation(model, model_config: ModelConfig, train_config: TrainConfig, val_stream, eot_id) -> tuple[float, int]:
    """`(total_nats, n_tokens)` over the whole validation stream, each token once."""
    if model_config.objective == "masked":
        return masked_evaluate(model, val_stream, model_config.mask_id, train_config.mask_rate)
    if is_recurrent(model_config):
        return recurrent_evaluate(model, val_stream, eot_id=eot_id)
    return evaluate(model, val_stream, model_config.n_ctx, eot_id=eot_id)


class _TrainingLoop:
    """The step loop of `train`, holding the progress that checkpoints save."""

    def __init__(self, model, optimizer, config: TrainConfig, train_stream, val_stream, eot_id, device, out_dir, state,
                 rule=None, context: DistributedContext | None = None, tracker=None):
        self.model, self.optimizer, self.config, self.rule = model, optimizer, config, rule
        self.context, self.tracker = context, tracker
        self.is_main = context is None or context.is_main
        # gradients all-reduced across processes; an MoE expert no token of a rank chose has no gradient there
        self.forward_model = wrap_model(model, context, find_unused_parameters=model.config.mlp == "moe")
        self.masked = model.config.objective == "masked"
        self.recurrent = is_recurrent(model.config)
        self.train_stream, self.val_stream, self.eot_id = train_stream, val_stream, eot_id
        self.device, self.out_dir, self.state = device, out_dir, state
        self.n_ctx = model.config.n_ctx
        self.session_tokens, self.session_train_s = 0, 0.0
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if config.bf16_autocast and device.type == "cuda"
            else contextlib.nullcontext()
        )

    def _finished(self, elapsed_s: float) -> bool:
        config = self.config
        if config.max_steps is not None and self.state["step"] >= config.max_steps:
            return True
        if config.max_minutes is None:
            return False
        # a time budget must stop every process at the same step: rank 0's clock decides
        return rank_zero_decides(elapsed_s >= 60 * config.max_minutes, self.context)

    def _global_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of this step's batch: the same for any number of processes, before sharing out."""
        config, step = self.config, self.state["step"]
        batch = train_batch(self.train_stream, self.n_ctx, config.batch_size, config.seed, step)
        if self.masked:
            model_config = self.model.config
            return mask_windows(batch[:, :-1], model_config.mask_id, model_config.d_vocab, config.mask_rate,
                                step_rng(config.seed, step))
        return batch[:, :-1], batch[:, 1:]

    def step(self) -> dict[str, float]:
        config, step = self.config, self.state["step"]
        lr = learning_rate(step, config.base_lr, config.min_lr, config.warmup_steps, config.decay_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = (rank_share(part, self.context).to(self.device) for part in self._global_batch())
        with self.autocast:
            logits = self.forward_model(inputs)
        loss = restricted_cross_entropy(logits, targets, self.rule(inputs) if self.rule is not None else None)
        aux_loss = moe_aux_loss(self.model)
        self.optimizer.zero_grad(set_to_none=True)
        (loss if aux_loss is None else loss + config.aux_loss_weight * aux_loss).backward()
        if config.max_grad_norm > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.max_grad_norm))
        else:
            grad_norm = math.nan
        self.optimizer.step()
        row = {"train_loss": mean_over_ranks(loss, self.context), "lr": lr, "grad_norm": grad_norm}
        if aux_loss is not None:
            row.update(aux_loss=mean_over_ranks(aux_loss, self.context), expert_load=moe_expert_load(self.model))
        return row

    def evaluate(self) -> dict[str, float]:
        """The eval log's scores: `val_loss`, and `val_loss_restricted` under an output rule."""
        config = self.config
        if self.masked:
            model_config = self.model.config
            total_nats, n_masked = masked_evaluate(self.model, self.val_stream, model_config.mask_id, config.mask_rate,
                                                   max_tokens=config.eval_tokens)
            return {"val_loss": total_nats / n_masked}
        total_nats, n_tokens = self._score_validation(allowed=None)
        scores = {"val_loss": total_nats / n_tokens}
        if self.rule is not None:  # the same windows (or the same pass) as val_loss, a smaller softmax
            total_nats, n_tokens = self._score_validation(allowed=self.rule)
            scores["val_loss_restricted"] = total_nats / n_tokens
        return scores

    def _score_validation(self, allowed) -> tuple[float, int]:
        """`(total_nats, n_tokens)` of the first `eval_tokens` of the validation stream, restricted by `allowed`."""
        if self.recurrent:
            return recurrent_evaluate(self.model, self.val_stream, self.eot_id, self.config.eval_tokens, allowed=allowed)
        return evaluate(self.model, self.val_stream, self.n_ctx, eot_id=self.eot_id, max_tokens=self.config.eval_tokens,
                        allowed=allowed)

    def _write(self, log, row: dict[str, Any]) -> None:
        log.write(json.dumps(row) + "\n")
        log.flush()
        if self.tracker is not None:
            self.tracker.log(row["step"], tensorboard_scalars(row))

    def run(self, progress: bool) -> None:
        config, state = self.config, self.state
        tokens_per_step = config.batch_size * self.n_ctx  # the global batch, over all processes
        session_start, elapsed_before = time.perf_counter(), state["elapsed_s"]
        bar = progress_bar(total=config.max_steps, initial=state["step"], disable=not progress, desc="train", unit="step")
        logs = contextlib.ExitStack()
        if self.is_main:
            train_log = logs.enter_context(open(self.out_dir / TRAIN_LOG, "a"))
            eval_log = logs.enter_context(open(self.out_dir / EVAL_LOG, "a"))
        try:
            finished = self._finished(elapsed_before)
            while not finished:
                step_start = time.perf_counter()
                row = self.step()
                step_s = time.perf_counter() - step_start
                state["step"] += 1
                state["tokens_seen"] += tokens_per_step
                state["elapsed_s"] = elapsed_before + time.perf_counter() - session_start
                self.session_tokens += tokens_per_step
                self.session_train_s += step_s
                finished = self._finished(state["elapsed_s"])
                row = {"step": state["step"], **row, "tokens_seen": state["tokens_seen"], "elapsed_s": state["elapsed_s"],
                       "tokens_per_s": tokens_per_step / step_s, **_peak_memory(self.device)}
                if self.is_main:
                    self._write(train_log, row)
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['train_loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}", refresh=False)
                if state["step"] % config.eval_every == 0 or finished:
                    if self.is_main:
                        scores = self.evaluate()
                        self._write(eval_log, {**{k: state[k] for k in ("step", "tokens_seen", "elapsed_s")}, **scores})
                        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{scores['val_loss']:.3f}", refresh=False)
                    barrier(self.context)
                if state["step"] % config.save_every == 0 or finished:
                    state["elapsed_s"] = elapsed_before + time.perf_counter() - session_start
                    if self.is_main:
                        save_checkpoint(self.out_dir, self.model, self.optimizer, dict(state))
                    barrier(self.context)
        finally:
            bar.close()
            logs.close()
