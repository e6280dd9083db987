"""`CategoricalHMM`: a fast, exact hidden Markov model over token ids.

    hmm = CategoricalHMM(n_states=100, vocab_size=1024, seed=0)
    history = hmm.fit(enc.train, n_iter=50, val=enc.validation, checkpoint=run_dir() / "hmm")
    hmm.fit(enc.train.chunks(max_len=256), ...)  # stories cut into chunks of 256 tokens, still memory-mapped
    hmm.log_likelihood(enc.validation)          # nats per sequence

    # thousands of states: 64 blocks of 64 states, tokens assigned to blocks from the data
    big = CategoricalHMM(n_states=4096, vocab_size=1024, emission_blocks=64)

    # several processes or GPUs (torchrun --nproc_per_node N script.py): one model, the E-step shared out
    hmm.fit(enc.train, n_iter=50, distributed=True, checkpoint=folder)

Baum–Welch EM with the batched, scaled forward–backward of `hmm_engine` (matmul-bound,
any sequence length, memory set by a per-batch token budget), plus the inference a
researcher asks of a fitted model: smoothed posteriors, filtered belief states, Viterbi
paths, sampling, and the `storylab.lm.LanguageModel` interface (`token_nats` from the
forward pass's normalisers, `next_token_probs`, `generate`, sizes). An encoded split is
read from its memory map a batch at a time, so a fit of the full TinyStories holds one
batch and a few numbers per story, not the corpus. Across processes see
`storylab.hmm_distributed`.

Conventions. The model has no end state: `log_likelihood` is ln p(x_1..x_T). Sequences
from an encoded split already end in the end-of-text token, which the HMM scores as an
ordinary token; `start` is the distribution of the state emitting a story's first token,
which plays the role the preceding end-of-text token plays for the bigram baseline.
Probabilities are float32 tensors on the model's device (`hmm.start`, `hmm.trans`,
`hmm.emit`); log-likelihoods and start and emission counts are accumulated in float64,
transition counts in float32 (a K×K float64 table alone is 2 GB at K=16,384). A model
made with `dtype="float64"` keeps its tables and runs its E-step in float64 (twice the
memory and about twice the time): its sums then agree to ~1e-15 however the sequences
are cut into batches or shared between processes, where float32 sums agree to ~1e-6.

Blocked emissions (Chiu & Rush 2020; `storylab.hmm_blocks`): with `emission_blocks=M`
the states are cut into M blocks of K/M and every token belongs to one block
(`token_blocks`, given or computed from the training data by `storylab.token_blocks`);
a state emits only its block's tokens. The tables stay dense (`emit` holds exact zeros
outside the blocks), so every method works unchanged; fitting, likelihoods, posteriors,
beliefs and Viterbi touch only the K/M live states per token.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from storylab import hmm_engine as engine
from storylab import hmm_io
from storylab import token_blocks as block_assignment
from storylab.checks import check_int, check_number
from storylab.devices import resolve_device
from storylab.distributed import DistributedContext, barrier, broadcast_, close_distributed, resolve_context
from storylab.hmm_blocks import Blocks, check_token_blocks
from storylab.hmm_distributed import share, sum_over_processes
from storylab.lm import EOT
from storylab.progress import progress_bar
from storylab.sampling import generate_tokens
from storylab.token_sequences import SequenceList, as_token_prefix, as_token_sequences, as_token_source, sequence_groups

INITS = ("random", "unigram")
# history fields written as TensorBoard scalars (storylab.tracking), by EM iteration
EM_SCALARS = {"train_nats_per_token": "em/train_nats_per_token", "val_nats_per_token": "em/val_nats_per_token",
              "tokens_per_s": "em/tokens_per_s", "elapsed_s": "em/iteration_s"}
UNIGRAM_NOISE = 0.5  # ± multiplicative noise on unigram emissions, enough to break state symmetry


class FitHistory(list):
    """One dict per EM iteration (a plain list), with `.to_dataframe()` for plotting."""

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(list(self))


class CategoricalHMM:
    """A hidden Markov model with `n_states` hidden states emitting tokens in [0, vocab_size).

    `eot_id` (the end-of-text token) only tells `generate` where to stop by default; the
    model scores it as an ordinary token.

    `dtype` ("float32" or "float64") is the dtype of the tables and of the E-step (see
    the module docstring).

    `emission_blocks=M` > 1 makes emissions block-sparse (see the module docstring):
    `n_states` must be a multiple of M, and `token_blocks` (V block ids, every block
    used) fixes which tokens each block emits; left None, the first `fit` computes it
    from the training data with `token_block_method` ("context" clustering, or the
    frequency-balanced "random" control; see `storylab.token_blocks`). Until then the
    model is an ordinary dense HMM.
    """

    family = "hmm"
    # arithmetic per token per EM iteration, in units of K²: forward and backward (K² each)
    # and the expected transition counts (K²), each a multiply-add (2 FLOPs)
    EM_FLOPS_PER_TOKEN_PER_STATE_PAIR = 6.0

    def __init__(self, n_states: int, vocab_size: int, seed: int = 0, device: str = "auto", init: str = "random", concentration: float = 1.0,
                 eot_id: int | None = None, emission_blocks: int = 1, token_blocks=None, token_block_method: str = "context",
                 dtype: str = "float32"):
        self._configure(n_states, vocab_size, seed, device, init, concentration, eot_id, emission_blocks, token_block_method, dtype)
        rng = np.random.default_rng(self.seed)
        ones = np.full(self.n_states, self.concentration)
        self._set_params(
            next(dirichlet_rows(rng, ones, 1))[0],
            dirichlet_rows(rng, ones, self.n_states),
            dirichlet_rows(rng, np.full(self.vocab_size, self.concentration), self.n_states),
        )
        if token_blocks is not None:
            self._assign_blocks(check_token_blocks(token_blocks, self.vocab_size, self.emission_blocks))

    def _configure(self, n_states, vocab_size, seed=0, device="auto", init="random", concentration=1.0, eot_id=None,
                   emission_blocks=1, token_block_method="context", dtype="float32") -> None:
        """The settings, checked, and an empty fit history: everything but the tables."""
        self.n_states = check_int("n_states", n_states, minimum=1)
        self.dtype = hmm_io.probability_dtype(dtype)
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=1)
        self.eot_id = None if eot_id is None else check_int("eot_id", eot_id, below=self.vocab_size)
        self.seed = check_int("seed", seed)
        if init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {init!r}")
        self.init, self.concentration = init, check_number("concentration", concentration, strict=True)
        self.emission_blocks = self._check_blocks(emission_blocks, token_block_method)
        self.token_block_method = token_block_method
        self.device = resolve_device(device)
        self.history = FitHistory()
        self._data_fingerprint: dict | None = None
        self._fit_settings: dict | None = None
        self._blocks: Blocks | None = None

    @classmethod
    def _without_tables(cls, **settings) -> "CategoricalHMM":
        """A model whose tables the caller sets next (from given or saved tables): no random
        tables are drawn, which at thousands of states costs seconds."""
        hmm = cls.__new__(cls)
        hmm._configure(**settings)
        return hmm

    def _check_blocks(self, emission_blocks, token_block_method) -> int:
        n_blocks = check_int("emission_blocks", emission_blocks, minimum=1)
        if self.n_states % n_blocks:
            raise ValueError(f"emission_blocks: n_states={self.n_states} must be a multiple of emission_blocks={n_blocks}")
        if n_blocks > self.vocab_size:
            raise ValueError(f"emission_blocks: {n_blocks} blocks need at least one token each, vocab_size is {self.vocab_size}")
        if token_block_method not in block_assignment.METHODS:
            raise ValueError(f"token_block_method: expected one of {block_assignment.METHODS}, got {token_block_method!r}")
        return n_blocks

    def _assign_blocks(self, token_blocks: np.ndarray) -> None:
        """Fix the token blocks and zero the emissions outside them, each row renormalised."""
        if self.emission_blocks == 1:  # one block holding every token: the dense model
            return
        self._blocks = Blocks(token_blocks, self.emission_blocks, self.n_states, self.device)
        self._set_emit(self._emit)

    @property
    def token_blocks(self) -> np.ndarray | None:
        """(V,) block id of every token for a blocked model once its blocks are fixed, else None."""
        return None if self._blocks is None else self._blocks.token_blocks.cpu().numpy().copy()

    # ----------------------------------------------------------------- parameters
    @property
    def start(self) -> torch.Tensor:
        return self._start

    @property
    def trans(self) -> torch.Tensor:
        return self._trans

    @property
    def emit(self) -> torch.Tensor:
        return self._emit

    def _set_params(self, start, trans, emit) -> None:
        """Set the tables from arrays, tensors or iterators of row chunks (see `_as_probabilities`)."""
        self._start = _as_probabilities(start, (self.n_states,), self.device, self.dtype)
        self._trans = _as_probabilities(trans, (self.n_states, self.n_states), self.device, self.dtype)
        self._set_emit(emit)

    def _set_emit(self, emit) -> None:
        if self._blocks is not None:  # a blocked model never emits outside its blocks
            emit = torch.as_tensor(emit, dtype=torch.float64).to(self.device) * self._blocks.emission_mask()
        self._emit = _as_probabilities(emit, (self.n_states, self.vocab_size), self.device, self.dtype)

    @classmethod
    def from_params(cls, start, trans, emit, device: str = "auto", eot_id: int | None = None, dtype: str = "float32") -> "CategoricalHMM":
        """A model with the given probabilities: start (K,), trans (K,K), emit (K,V)."""
        start, trans, emit = (torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).double().cpu() for x in (start, trans, emit))
        hmm_io.check_params(start, trans, emit)
        hmm = cls._without_tables(n_states=start.shape[0], vocab_size=emit.shape[1], device=device, eot_id=eot_id, dtype=dtype)
        hmm._set_params(start, trans, emit)
        return hmm

    def __repr__(self) -> str:
        blocks = f", emission_blocks={self.emission_blocks}" if self.emission_blocks > 1 else ""
        dtype = f", dtype='{hmm_io.dtype_name(self.dtype)}'" if self.dtype != torch.float32 else ""
        return (f"CategoricalHMM(n_states={self.n_states}, vocab_size={self.vocab_size}{blocks}{dtype}, device='{self.device}', "
                f"iterations={len(self.history)})")

    # ----------------------------------------------------------------- fitting
    def fit(
        self,
        sequences,
        n_iter: int = 50,
        tol: float = 1e-4,
        val=None,
        progress: bool = True,
        smoothing: float = 0.0,
        batch_tokens: int | None = None,
        checkpoint: str | Path | None = None,
        tracker=None,
        distributed: bool | DistributedContext = False,
    ) -> FitHistory:
        """Baum–Welch EM; returns the history (one dict per iteration).

        `sequences` (and `val`) are a list of token-id arrays or an encoded split: `exp.train`
        (every story and its end-of-text) or `exp.train.chunks(max_len, mode)` (stories cut
        to `max_len` tokens). A split is read from its memory map a batch at a time on every
        iteration, so memory is set by `batch_tokens`, not by the corpus; a list gives the
        same batches and the same numbers.
        Each row holds the train (and `val`) log-likelihood of the parameters the
        iteration's E-step saw, per token too, plus `elapsed_s` and `tokens_per_s` of the
        E+M step. Stops after `n_iter` iterations or when the relative improvement of the
        train log-likelihood per token falls below `tol`. `smoothing` adds Dirichlet
        pseudo-counts in the M-step (so no probability becomes 0; a blocked model's
        emissions outside its blocks stay 0). `batch_tokens` bounds the tokens per
        E-step batch (memory ≈ 12 bytes × n_states per token, × n_states/emission_blocks
        for a blocked model, × 2 in float64). A blocked model without `token_blocks` gets
        them from these `sequences` on its first fit.
        With `checkpoint` (a folder) every iteration is saved there (one file, renamed
        into place) and a later call resumes from it, to the same bytes as an unbroken
        fit; `n_iter` then counts the checkpoint's iterations too. A checkpoint written
        for other data, sizes, dtype or `smoothing` is refused. A `storylab.tracking.Tracker`
        gets every history row as TensorBoard scalars as the fit runs (a resumed fit's
        earlier rows first).
        `distributed=True` joins the process group torchrun (or a submitit SLURM job) set
        up, on each process's device; a `DistributedContext` names one the caller joined.
        Every process passes the same arguments and ends with the same model; rank 0
        alone writes the checkpoint and the tracker and shows progress; a checkpoint
        resumes with any number of processes (`storylab.hmm_distributed`).
        """
        n_iter = check_int("n_iter", n_iter)
        tol = check_number("tol", tol)
        smoothing = check_number("smoothing", smoothing)
        if batch_tokens is not None:
            batch_tokens = check_int("batch_tokens", batch_tokens, minimum=1)
        data = as_token_source(sequences, self.vocab_size, "sequences")
        val_data = as_token_source(val, self.vocab_size, "val") if val is not None else None
        fingerprint = data_fingerprint(data)  # of all the data, on every process: a checkpoint resumes with any world size
        context = resolve_context(distributed, self.device)  # after every check: a bad argument never joins a group
        try:
            return self._fit(data, val_data, fingerprint, {"smoothing": smoothing}, n_iter, tol, progress, smoothing,
                             batch_tokens, checkpoint, tracker, context or DistributedContext(device=self.device))
        finally:
            if distributed is True:
                close_distributed(context)

    def _fit(self, data, val_data, fingerprint: dict, settings: dict, n_iter: int, tol: float, progress: bool, smoothing: float,
             batch_tokens: int | None, checkpoint, tracker, context: DistributedContext) -> FitHistory:
        """`fit` once the inputs are checked and the processes (if several) joined."""
        if context.device != self.device:
            self._move_to(context.device)
        target = len(self.history) + n_iter
        if checkpoint is not None and (Path(checkpoint) / hmm_io.WEIGHTS_FILE).exists():
            self._resume(Path(checkpoint), fingerprint, settings, remove_temporaries=context.is_main)
            target = n_iter
        elif not self.history and self.init == "unigram":
            self._init_from_unigram(data)
        if self.emission_blocks > 1 and self._blocks is None:
            self._assign_blocks(block_assignment.assign_token_blocks(data, self.vocab_size, self.emission_blocks, self.token_block_method, self.seed))
        if context.active:
            self._adopt_rank_zero_tables(context)
        self._data_fingerprint, self._fit_settings = fingerprint, settings

        batch_tokens = batch_tokens or self._default_batch_tokens()
        keep_mb = 0 if target - len(self.history) <= 1 else None  # packed batches are kept only for a later pass
        batches = engine.Batches(share(data, context), batch_tokens, self.device, keep_mb)
        val_batches = engine.Batches(share(val_data, context), batch_tokens, self.device, keep_mb) if val_data is not None else None
        n_val_tokens = int(val_data.lengths.sum()) if val_data is not None else 0
        workspace = engine.Workspace(self.device)
        converged = bool(self.history) and self.history[-1].get("converged", False)
        tracker = tracker if context.is_main else None
        if tracker is not None:
            tracker.replay(self.history, "iteration", EM_SCALARS)
        bar = progress_bar(total=target, initial=min(len(self.history), target), disable=not (progress and context.is_main), desc="EM", unit="iter")
        while len(self.history) < target and not converged:
            row = self._em_iteration(batches, smoothing, workspace, val_batches, n_val_tokens, context)
            converged = self._check_convergence(row, tol)
            self.history.append(row)
            if checkpoint is not None and context.is_main:
                self.save(checkpoint)
            if tracker is not None:
                tracker.log(row["iteration"], {name: row.get(field) for field, name in EM_SCALARS.items()})
            bar.update(1)
            bar.set_postfix(train_nats_per_token=f"{row['train_nats_per_token']:.4f}", refresh=False)  # bars redraw at mininterval, not every update
        bar.close()
        barrier(context)  # every process returns once rank 0's checkpoint is written
        return self.history

    def expected_counts(self, sequences, batch_tokens: int | None = None, distributed: bool | DistributedContext = False) -> engine.SufficientStats:
        """The E-step's sufficient statistics under the current parameters (summed over the processes
        when `distributed`), as `fit` computes them: start, transition-pair and emission counts,
        log-likelihood and token count. The model is not changed."""
        data = as_token_source(sequences, self.vocab_size, "sequences")
        context = resolve_context(distributed, self.device) or DistributedContext(device=self.device)
        try:
            batches = engine.Batches(share(data, context), batch_tokens or self._default_batch_tokens(), self.device, keep_mb=0)
            stats = self._e_step(batches, engine.Workspace(self.device))
            sum_over_processes(stats, context)
            return stats
        finally:
            if distributed is True:
                close_distributed(context)

    def _e_step(self, batches, workspace: engine.Workspace) -> engine.SufficientStats:
        stats = engine.SufficientStats.zeros(self.n_states, self.vocab_size, self.device, self._blocks, self.dtype)
        emit_t = self._emit.T.contiguous()
        with torch.no_grad():
            for batch in batches:
                engine.accumulate_batch(stats, batch, self._start, self._trans, emit_t, workspace, self._blocks)
        return stats

    def _em_iteration(self, batches: engine.Batches, smoothing: float, workspace: engine.Workspace,
                      val_batches: engine.Batches | None = None, n_val_tokens: int = 0, context: DistributedContext | None = None) -> dict:
        """One E-step and M-step; `val_batches` are scored with the parameters the E-step saw (not timed).

        With several processes each holds its share of the batches; the statistics (and the
        validation log-likelihood) are summed over the processes before the M-step.
        """
        started = time.perf_counter()
        stats = self._e_step(batches, workspace)
        with torch.no_grad():
            val_started = time.perf_counter()
            val_ll = self._total_log_likelihood(val_batches, workspace) if val_batches is not None else None
            val_s = time.perf_counter() - val_started
            val_ll = sum_over_processes(stats, context or DistributedContext(device=self.device), val_ll)
            if self._blocks is not None:
                self._blocks.release_backward()  # 1 GB at K=16,384; the M-step needs only the forward copy
            self._start, self._trans, self._emit = engine.m_step(stats, smoothing, (self._start, self._trans, self._emit), self._blocks)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed_s = time.perf_counter() - started - val_s
        row = {
            "iteration": len(self.history) + 1,
            "train_log_likelihood": stats.log_likelihood,
            "train_nats_per_token": -stats.log_likelihood / stats.n_tokens,
            "elapsed_s": elapsed_s,
            "tokens_per_s": stats.n_tokens / elapsed_s,
        }
        if val_ll is not None:
            row["val_log_likelihood"] = val_ll
            row["val_nats_per_token"] = -val_ll / n_val_tokens
        return row

    def _check_convergence(self, row: dict, tol: float) -> bool:
        if not self.history:
            row["relative_improvement"] = None
            row["converged"] = False
            return False
        previous = -self.history[-1]["train_nats_per_token"]
        current = -row["train_nats_per_token"]
        improvement = (current - previous) / max(abs(previous), 1e-300)
        row["relative_improvement"] = improvement
        row["converged"] = bool(improvement < tol)
        return row["converged"]

    def _total_log_likelihood(self, batches: engine.Batches, workspace: engine.Workspace) -> float:
        emit_t = self._emit.T.contiguous()
        with torch.no_grad():
            return float(sum(engine.forward(b, self._start, self._trans, emit_t, workspace, self._blocks)[3].sum() for b in batches))

    def _init_from_unigram(self, data) -> None:
        counts = block_assignment.token_counts(data, self.vocab_size).astype(np.float64) + 1.0
        rng = np.random.default_rng([self.seed, 1])  # a stream apart from the random init's
        noise = rng.uniform(1 - UNIGRAM_NOISE, 1 + UNIGRAM_NOISE, size=(self.n_states, self.vocab_size))
        self._set_params(self._start, self._trans, counts[None, :] * noise)

    def _move_to(self, device: torch.device) -> None:
        """Put the tables (and a blocked model's blocks) on `device`: each process of a distributed fit on its own."""
        self._start, self._trans, self._emit = (t.to(device) for t in (self._start, self._trans, self._emit))
        if self._blocks is not None:
            self._blocks = Blocks(self._blocks.token_blocks.cpu().numpy(), self.emission_blocks, self.n_states, device)
        self.device = device

    def _adopt_rank_zero_tables(self, context: DistributedContext) -> None:
        """Every process takes rank 0's tables (and token blocks): the k-means of the blocks or a
        random draw made on other hardware could differ in their last bits, and one model must
        see the statistics of all the shares."""
        tables = [self._start, self._trans, self._emit] + ([self._blocks.token_blocks] if self._blocks is not None else [])
        broadcast_(tables, context)
        if self._blocks is not None:
            self._blocks.release()  # its block-ordered copy of trans may predate the broadcast

    def _resume(self, folder: Path, fingerprint: dict, settings: dict, remove_temporaries: bool = True) -> None:
        if remove_temporaries:  # only this fit (its rank 0) writes its checkpoint folder
            hmm_io.remove_stale_temporaries(folder)
        tensors, meta, legacy = hmm_io.load_params(folder)
        if legacy:
            raise ValueError(f"checkpoint: {folder} is in the old two-file format, whose tables and history may come from different iterations; delete it to start the fit afresh")
        if (meta["n_states"], meta["vocab_size"]) != (self.n_states, self.vocab_size):
            raise ValueError(f"checkpoint: {folder} holds {meta['n_states']} states x {meta['vocab_size']} tokens, this model is {self.n_states} x {self.vocab_size}")
        if meta.get("data_fingerprint") != fingerprint:
            raise ValueError(f"checkpoint: {folder} was written for other training data ({meta.get('data_fingerprint')}, now {fingerprint})")
        if meta.get("fit_settings") != settings:
            raise ValueError(f"checkpoint: {folder} was written by a fit with other settings ({meta.get('fit_settings')}, now {settings}); smoothing must match")
        if meta.get("dtype", "float32") != hmm_io.dtype_name(self.dtype):
            raise ValueError(f"checkpoint: {folder} holds {meta.get('dtype', 'float32')} tables, this model computes in {hmm_io.dtype_name(self.dtype)}")
        if meta.get("emission_blocks", 1) != self.emission_blocks:
            raise ValueError(f"checkpoint: {folder} holds a model with emission_blocks={meta.get('emission_blocks', 1)}, this model has {self.emission_blocks}")
        saved_blocks = tensors.get("token_blocks")
        if self._blocks is not None and saved_blocks is not None and not torch.equal(saved_blocks, self._blocks.token_blocks.cpu()):
            raise ValueError(f"checkpoint: {folder} was fitted with other token_blocks than the ones this model was given")
        self._restore(tensors, meta, where=f"checkpoint: {folder}")

    # ----------------------------------------------------------------- inference
    def _default_batch_tokens(self) -> int:
        return engine.default_batch_tokens(self.n_states, self.device, blocks=self._blocks, dtype=self.dtype)

    def _one_pass(self, sequences, batch_tokens: int | None) -> tuple[object, engine.Batches]:
        """Checked data and its batches for one pass (nothing kept: a split is read a batch at a time)."""
        data = as_token_source(sequences, self.vocab_size, "sequences")
        return data, engine.Batches(data, batch_tokens or self._default_batch_tokens(), self.device, keep_mb=0)

    def log_likelihood(self, sequences, batch_tokens: int | None = None) -> np.ndarray:
        """Natural-log p(x) per sequence (no end state), in the order given."""
        data, batches = self._one_pass(sequences, batch_tokens)
        result = np.empty(len(data.lengths), dtype=np.float64)
        emit_t, workspace = self._emit.T.contiguous(), engine.Workspace(self.device)
        with torch.no_grad():
            for batch in batches:
                result[batch.index] = engine.forward(batch, self._start, self._trans, emit_t, workspace, self._blocks)[3].cpu().numpy()
        return result

    def _single_batch(self, seq, name: str = "seq") -> engine.Batch:
        """One sequence as a batch: its packed order is its time order."""
        (array,) = as_token_sequences([seq], self.vocab_size, name)
        return engine.make_batches([array], len(array), self.device)[0]

    def posteriors(self, seq) -> np.ndarray:
        """(T, K) smoothed marginals p(state_t | x_1..x_T)."""
        batch = self._single_batch(seq)
        with torch.no_grad():
            gamma = engine.smoothed_marginals(batch, self._start, self._trans, self._emit.T.contiguous(), engine.Workspace(self.device), self._blocks)
        return self._all_states(batch, gamma)

    def beliefs(self, seq) -> np.ndarray:
        """(T, K) filtered belief states p(state_t | x_1..x_t)."""
        return self._filtered(seq).cpu().numpy().astype(np.float64)

    def occupancy(self, sequences, batch_tokens: int | None = None) -> np.ndarray:
        """(K,) the expected fraction of the tokens of `sequences` each state emits (posteriors summed),
        over batches as in EM (a blocked model's live states added into their blocks' rows)."""
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        totals = torch.zeros(self.n_states, dtype=torch.float64, device=self.device)
        emit_t, workspace = self._emit.T.contiguous(), engine.Workspace(self.device)
        with torch.no_grad():
            for batch in engine.make_batches(seqs, batch_tokens or self._default_batch_tokens(), self.device):
                gamma = engine.smoothed_marginals(batch, self._start, self._trans, emit_t, workspace, self._blocks)
                if self._blocks is not None:  # each token's k live states added into its block's rows, never (T, K)
                    totals.view(self._blocks.n_blocks, -1).index_add_(0, self._blocks.index(batch).groups,
                                                                     gamma.to(torch.float64))
                else:
                    totals += gamma.sum(dim=0, dtype=torch.float64)
        return (totals / totals.sum()).cpu().numpy()

    def _all_states(self, batch: engine.Batch, values: torch.Tensor) -> np.ndarray:
        """(T, K) float64 from the engine's per-token values (a blocked model's hold only the live states)."""
        if self._blocks is not None:
            values = self._blocks.to_global(values, self._blocks.index(batch).groups)
        return values.cpu().numpy().astype(np.float64)

    def viterbi(self, seq) -> np.ndarray:
        """The most likely state path (T,) as int64 (log-space max-product)."""
        (tokens,) = as_token_sequences([seq], self.vocab_size, "seq")
        with torch.no_grad():
            return engine.viterbi(torch.as_tensor(tokens, device=self.device), self._start, self._trans, self._emit.T.contiguous(), self._blocks)

    def sample(self, n: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """`(tokens, states)`, each (n, length) int64; deterministic for `seed` on any device."""
        n, length = check_int("n", n, minimum=1), check_int("length", length, minimum=1)
        generator = torch.Generator().manual_seed(check_int("seed", seed))
        start, trans, emit = (p.double().cpu() for p in (self._start, self._trans, self._emit))
        states = torch.empty(n, length, dtype=torch.long)
        tokens = torch.empty(n, length, dtype=torch.long)
        states[:, 0] = torch.multinomial(start.expand(n, -1), 1, replacement=True, generator=generator)[:, 0]
        for t in range(1, length):
            states[:, t] = torch.multinomial(trans[states[:, t - 1]], 1, generator=generator)[:, 0]
        for t in range(length):
            tokens[:, t] = torch.multinomial(emit[states[:, t]], 1, generator=generator)[:, 0]
        return tokens.numpy(), states.numpy()

    # ----------------------------------------------------------------- the LanguageModel interface
    @property
    def label(self) -> str:
        """"HMM K=100", or "HMM K=4096 M=64" for blocked emissions."""
        return f"HMM K={self.n_states}" + (f" M={self.emission_blocks}" if self.emission_blocks > 1 else "")

    @property
    def n_params(self) -> int:
        """Free probabilities: start (K-1), transitions K(K-1), emissions K(V-1) — or, blocked,
        each state's block of tokens less one (the rest of its row is zero by construction)."""
        k, v = self.n_states, self.vocab_size
        if self._blocks is None:
            return (k - 1) + k * (k - 1) + k * (v - 1)
        tokens_per_block = np.bincount(self._blocks.token_blocks.cpu().numpy(), minlength=self.emission_blocks)
        return (k - 1) + k * (k - 1) + (k // self.emission_blocks) * int((tokens_per_block - 1).sum())

    @property
    def train_tokens(self) -> int:
        """Tokens of the data the last `fit` saw (0 before any fit)."""
        return int((self._data_fingerprint or {}).get("n_tokens", 0))

    @property
    def train_flops(self) -> float:
        """EM arithmetic: ~6·k² per token per iteration (forward, backward, transition counts), with
        k the states alive at a token: all K of a dense model, the K/M of a block for a blocked one."""
        alive = self.n_states // self.emission_blocks
        return self.EM_FLOPS_PER_TOKEN_PER_STATE_PAIR * alive**2 * self.train_tokens * len(self.history)

    def token_nats(self, sequences, batch_tokens: int | None = None) -> list[np.ndarray]:
        """−ln p(x_t | x_<t) of every token: minus the log of the forward pass's normaliser at t.

        The scaled forward pass divides by c_t = p(x_t | x_<t) at every step, so these
        sum to −`log_likelihood` (the same recursion, summed in float64).
        """
        data, batches = self._one_pass(sequences, batch_tokens)
        result: list[np.ndarray] = [np.empty(0)] * len(data.lengths)
        emit_t, workspace = self._emit.T.contiguous(), engine.Workspace(self.device)
        with torch.no_grad():
            for batch in batches:
                norms = engine.forward(batch, self._start, self._trans, emit_t, workspace, self._blocks)[2]
                nats = (-norms[:, 0].double().log()).cpu().numpy()
                # a zero normaliser costs -ln 0 = inf (kept: nan_to_num would make it the largest float), and
                # after it the recursion is 0/0: the rest of that sequence is impossible too
                nats = np.nan_to_num(nats, nan=np.inf, posinf=np.inf)
                step_starts = np.asarray(batch.offsets[:-1])
                for row, index in enumerate(batch.index):  # packed time-major: (row, t) sits at offsets[t] + row
                    result[index] = nats[step_starts[: data.lengths[index]] + row]
        return result

    def _filtered(self, tokens: np.ndarray) -> torch.Tensor:
        """(T, K) filtered beliefs p(state_t | x_1..x_t), float32 on the model's device."""
        batch = self._single_batch(tokens)
        with torch.no_grad():
            alpha = engine.forward(batch, self._start, self._trans, self._emit.T.contiguous(), engine.Workspace(self.device),
                                   self._blocks)[0]
        return self._blocks.to_global(alpha, self._blocks.index(batch).groups) if self._blocks is not None else alpha

    def _next_distributions(self, beliefs: torch.Tensor) -> np.ndarray:
        """p(next token) after each of the given filtered beliefs (n, K) → (n, V) float64, each row
        summing to 1, computed on the model's device. A prefix the model gives probability 0 has
        no next-token distribution: a one-line ValueError says so."""
        with torch.no_grad():
            probs = (beliefs.to(self._trans.dtype) @ self._trans @ self._emit).double().cpu().numpy()
        totals = probs.sum(axis=1, keepdims=True)
        if not (np.isfinite(totals).all() and (totals > 0).all()):
            raise ValueError("prefix_ids: has probability 0 under this HMM (a token no state reachable there emits)")
        return probs / totals

    def next_token_probs(self, prefix_ids) -> np.ndarray:
        """p(next token | prefix) over all V tokens, float64, summing to 1."""
        prefix = as_token_prefix(prefix_ids, self.vocab_size)
        if prefix.size == 0:
            return self.next_token_probs_all(prefix)[0]
        return self._next_distributions(self._filtered(prefix)[-1:])[0]

    def next_token_probs_all(self, ids) -> np.ndarray:
        """(len(ids) + 1, V): row t is p(next token | ids[:t]), all from one filtering pass
        (row 0: the first token of a story, from `start`)."""
        ids = as_token_prefix(ids, self.vocab_size, "ids")
        with torch.no_grad():
            first = (self._start @ self._emit).double().cpu().numpy()[None, :]
        if ids.size == 0:
            return first / first.sum()
        return np.concatenate([first / first.sum(), self._next_distributions(self._filtered(ids))])

    def generate(self, prefix_ids, max_new_tokens: int, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0, stop_id=EOT) -> np.ndarray:
        """New token ids after `prefix_ids` (see `storylab.lm`), updating the belief state token by token
        on the model's device."""
        prefix = as_token_prefix(prefix_ids, self.vocab_size)
        state = self._start if prefix.size == 0 else self._filtered(prefix)[-1] @ self._trans  # p(next state)

        def predict(new_ids: list[int]) -> np.ndarray:
            nonlocal state
            with torch.no_grad():
                if new_ids:
                    belief = state * self._emit[:, new_ids[-1]]
                    state = (belief / belief.sum()) @ self._trans
                probs = (state @ self._emit).double().cpu().numpy()
            return probs / probs.sum()

        return generate_tokens(predict, max_new_tokens, vocab_size=self.vocab_size, eot_id=self.eot_id, greedy=greedy,
                               temperature=temperature, top_k=top_k, seed=seed, stop_id=stop_id)

    # ----------------------------------------------------------------- files and peers
    def save(self, path: str | Path) -> Path:
        """Write `path/hmm.safetensors`: the tables, with settings, history and iteration in its header."""
        meta = {
            "n_states": self.n_states,
            "vocab_size": self.vocab_size,
            "eot_id": self.eot_id,
            "seed": self.seed,
            "init": self.init,
            "concentration": self.concentration,
            "emission_blocks": self.emission_blocks,
            "token_block_method": self.token_block_method,
            "dtype": hmm_io.dtype_name(self.dtype),
            "iteration": len(self.history),
            "data_fingerprint": self._data_fingerprint,
            "fit_settings": self._fit_settings,
            "history": list(self.history),
        }
        tables = {"start": self._start, "trans": self._trans, "emit": self._emit}
        if self._blocks is not None:
            tables["token_blocks"] = self._blocks.token_blocks
        return hmm_io.save_params(Path(path), tables, meta)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "CategoricalHMM":
        """A model saved with `save`; a missing, corrupted or wrong-shaped file is a ValueError."""
        path = Path(path)
        tensors, meta, _ = hmm_io.load_params(path)
        where = f"path: {path / hmm_io.WEIGHTS_FILE}"
        try:
            hmm = cls._without_tables(n_states=meta["n_states"], vocab_size=meta["vocab_size"], seed=meta.get("seed", 0),
                                      device=device, init=meta.get("init", "random"), concentration=meta.get("concentration", 1.0),
                                      emission_blocks=meta.get("emission_blocks", 1), eot_id=meta.get("eot_id"),
                                      token_block_method=meta.get("token_block_method", "context"), dtype=meta.get("dtype", "float32"))
        except ValueError as error:
            raise ValueError(f"{where} has settings this version cannot use: {error}") from error
        hmm._restore(tensors, meta, where)
        return hmm

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict, where: str) -> None:
        """Tables, blocks, history and fit bookkeeping from a saved file, exactly as saved.

        The tables are used bit for bit, never renormalised: renormalising moves
        their last bits, and a resumed fit then drifts away from an unbroken one.
        """
        if "token_blocks" in tensors:
            token_blocks = check_token_blocks(tensors["token_blocks"], self.vocab_size, self.emission_blocks, where)
            self._blocks = Blocks(token_blocks, self.emission_blocks, self.n_states, self.device)
            outside = tensors["emit"][~self._blocks.emission_mask().cpu()]
            if (outside != 0).any():
                raise ValueError(f"{where}: emit has probability outside the token blocks (a blocked model's emissions there are exactly 0)")
        self._start, self._trans, self._emit = (tensors[k].to(self.device).contiguous() for k in ("start", "trans", "emit"))
        self.history = FitHistory(meta.get("history", []))
        self._data_fingerprint = meta.get("data_fingerprint")
        self._fit_settings = meta.get("fit_settings")

    def to_pomegranate(self):
        """A pomegranate `DenseHMM` with the full vocabulary width (see `hmm_io.to_pomegranate`)."""
        return hmm_io.to_pomegranate(self._start, self._trans, self._emit)

    @classmethod
    def from_pomegranate(cls, model, vocab_size: int, device: str = "auto") -> "CategoricalHMM":
        """From a pomegranate `DenseHMM`; `vocab_size` is given explicitly, never inferred."""
        start, trans, emit = hmm_io.from_pomegranate(model, vocab_size)
        return cls.from_params(start, trans, emit, device=device)


def data_fingerprint(sequences) -> dict:
    """Sizes and a content hash of the training data, so a checkpoint never resumes on other data.

    `sequences`: a list of arrays or a `TokenSequences` (read a group at a time). The hash
    is of every sequence's length then its ids, as int64, one sequence after the other.
    """
    data = sequences if hasattr(sequences, "take") else SequenceList(list(sequences))
    digest = hashlib.sha256()
    for group in sequence_groups(data):
        lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        record = np.empty(len(group) + int(lengths.sum()), dtype=np.int64)  # [length, ids...] of each sequence
        heads = np.cumsum(lengths + 1) - (lengths + 1)
        is_head = np.zeros(len(record), dtype=bool)
        is_head[heads] = True
        record[heads] = lengths
        record[~is_head] = np.concatenate(group)
        digest.update(record.tobytes())
    lengths = np.asarray(data.lengths)
    return {"n_sequences": len(lengths), "n_tokens": int(lengths.sum()), "sha256": digest.hexdigest()[:16]}


ROWS_BYTES = 64 * 2**20  # float64 rows made or renormalised at a time: a K×K float64 table is 2 GB at K=16,384


def _rows_per_chunk(n_cols: int) -> int:
    return max(1, ROWS_BYTES // (8 * n_cols))


def _as_probabilities(value, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A table of `shape` and `dtype`, each row renormalised in float64 so it sums to 1 as closely as `dtype` can.

    `value` is an array or tensor, or an iterator of row chunks (how `__init__` makes a
    large random table without holding it in float64 whole).
    """
    if isinstance(value, (np.ndarray, torch.Tensor, list, tuple)):
        array = value if isinstance(value, torch.Tensor) else np.asarray(value)
        step = _rows_per_chunk(shape[-1])
        value = [array] if array.ndim == 1 else (array[first : first + step] for first in range(0, array.shape[0], step))
    table = torch.empty(shape, dtype=dtype, device=device)
    first = 0
    for chunk in value:
        chunk = torch.as_tensor(chunk, dtype=torch.float64).to(device)
        table[first : first + len(chunk)] = chunk / chunk.sum(dim=-1, keepdim=True)
        first += len(chunk)
    return table


def dirichlet_rows(rng: np.random.Generator, concentration: np.ndarray, n_rows: int):
    """Dirichlet rows in chunks (the same draws as one call: numpy fills rows in order)."""
    step = _rows_per_chunk(len(concentration))
    for first in range(0, n_rows, step):
        rows = rng.dirichlet(concentration, size=min(step, n_rows - first))
        # a tiny concentration can give exact zeros, which EM could never move away from
        np.maximum(rows, 1e-12, out=rows)
        rows /= rows.sum(axis=1, keepdims=True)
        yield rows
