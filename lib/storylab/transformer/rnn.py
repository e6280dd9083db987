"""The recurrent family: an LSTM (or GRU) language model, trained by the transformer's own loop.

    model_config = ModelConfig(architecture="lstm", n_layers=2, d_model=256, n_ctx=128)
    result = train(model_config, TrainConfig(...), train_stream, val_stream, out_dir, tokenizer=tok)
    result.lm                   # an RNNLM: storylab.lm.score, generate, next_token_probs, ...

`StoryRNN` is token embedding -> `n_layers` stacked LSTM (GRU) layers of width `d_model`
-> a linear unembedding; `forward(ids) -> logits` like `StoryTransformer`, so `train`
(warm-up, cosine, clipping, checkpoints, resume, TensorBoard, several processes) needs
nothing new. Training reads random windows of `n_ctx + 1` tokens and starts every window
from a zero state: `n_ctx` is the length of truncated backpropagation through time.

Scoring carries the state instead (`RNNLM`): a story is read from its end-of-text token
to its end in one pass, however long, so an RNN needs no sliding window and no stride
(`Score.stride` is None for it), and every token is conditioned on the whole story before
it. The state is exact over any length; whether the model USES context beyond the `n_ctx`
tokens it was trained on is its own business (the belief-KL curve by position shows it).
The periodic validation of `train` likewise reads the flat validation stream in one pass
(`recurrent_evaluate`). A long sequence is fed in chunks of `chunk_tokens` with the state
carried between them, which bounds the memory of the logits without changing the result.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from storylab.lm import EOT
from storylab.sampling import generate_tokens
from storylab.token_sequences import as_token_prefix
from storylab.transformer.module_lm import ModuleLM, eval_mode
from storylab.transformer.output_rules import restrict_logits
from storylab.transformer.scoring import Allowed, restricted_cross_entropy

CHUNK_TOKENS = 1024  # time steps per forward call when scoring: bounds (batch, chunk, vocab) logits
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None  # GRU: h; LSTM: (h, c); None: zeros


class StoryRNN(nn.Module):
    """`model(input_ids [batch, seq]) -> logits [batch, seq, d_vocab]`, each sequence from a zero state."""

    def __init__(self, config, seed: int = 0):  # a ModelConfig (not imported: `options` counts our parameters)
        super().__init__()
        if config.architecture not in _CELLS:
            raise ValueError(f"config.architecture: expected one of {tuple(_CELLS)}, got {config.architecture!r}")
        if config.d_vocab is None:
            raise ValueError("config.d_vocab: expected the vocabulary size (len(tokenizer)), got None")
        self.config = config
        self.tok_embed = nn.Embedding(config.d_vocab, config.d_model)
        self.rnn = _CELLS[config.architecture](config.d_model, config.d_model, num_layers=config.n_layers,
                                                batch_first=True)
        self.head = nn.Linear(config.d_model, config.d_vocab)
        self.init_weights(seed)

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """PyTorch's usual recurrent initialisation, from a private generator so `seed` alone fixes the weights.

        Recurrent and output matrices ~ U(±1/sqrt(d_model)), embeddings ~ N(0, 1), biases 0,
        except the LSTM's forget-gate bias at 1 (Jozefowicz et al. 2015): the state is kept
        by default early in training, which lets gradients reach far back.
        """
        generator = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(self.config.d_model)
        for name, param in self.named_parameters():
            if name.startswith("tok_embed"):
                param.copy_(torch.randn(param.shape, generator=generator))
            elif "bias" in name:
                param.zero_()
            else:
                param.copy_((torch.rand(param.shape, generator=generator) * 2 - 1) * bound)
        if self.config.architecture == "lstm":
            width = self.config.d_model
            for layer in range(self.config.n_layers):  # gates are stacked (input, forget, cell, output)
                getattr(self.rnn, f"bias_ih_l{layer}")[width : 2 * width] = 1.0

    def run(self, input_ids: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """`(logits, state after the last token)`, starting from `state` (zeros when None)."""
        # cuDNN wants the weights in one block; loading a checkpoint or DDP's broadcast can split them (no-op on CPU)
        self.rnn.flatten_parameters()
        hidden, state = self.rnn(self.tok_embed(input_ids), state)
        return self.head(hidden), state

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.run(input_ids)[0]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def recurrent_nats(module: StoryRNN, sequences: list[np.ndarray], batch_size: int = 32,
                   chunk_tokens: int = CHUNK_TOKENS, allowed: Allowed | None = None) -> list[np.ndarray]:
    """−ln p of tokens 1.. of each sequence (token 0 is context only), state carried over the whole sequence.

    Sequences are sorted by length and batched; a batch is right-padded, which cannot
    change the real positions (the state only flows forward), and padding is not scored.
    `allowed` restricts the softmax as in `scoring.window_nats`; it reads one chunk of
    inputs at a time (as a rule reads one window of a transformer), which keeps its
    (batch, chunk, vocab) mask as small as the logits.
    """
    device = next(module.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    out = [np.empty(len(seq) - 1, dtype=np.float64) for seq in sequences]
    with eval_mode(module):
        for first in range(0, len(order), batch_size):
            members = order[first : first + batch_size]
            longest = len(sequences[members[0]])
            padded = np.zeros((len(members), longest), dtype=np.int64)  # padding: any valid id, never scored
            for row, index in enumerate(members):
                padded[row, : len(sequences[index])] = sequences[index]
            tokens = torch.from_numpy(padded).to(device)
            targets = tokens.clone()
            for row, index in enumerate(members):  # padding is not scored (and may lie outside a rule)
                targets[row, len(sequences[index]) :] = -100
            nats, state = [], None
            for start in range(0, longest - 1, chunk_tokens):
                stop = min(start + chunk_tokens, longest - 1)
                inputs = tokens[:, start:stop]
                logits, state = module.run(inputs, state)
                restriction = None if allowed is None else allowed(inputs)
                nats.append(restricted_cross_entropy(logits, targets[:, start + 1 : stop + 1], restriction,
                                                     reduction="none").double().cpu())
            table = torch.cat(nats, dim=1).numpy() if nats else np.empty((len(members), 0))
            for row, index in enumerate(members):
                out[index][:] = table[row, : len(sequences[index]) - 1]
    return out


def recurrent_evaluate(model: StoryRNN, stream, eot_id: int | None = None, max_tokens: int | None = None,
                       allowed: Allowed | None = None) -> tuple[float, int]:
    """`(total_nats, n_tokens)` of one flat `stream` read in one pass (the counterpart of `scoring.evaluate`);
    `allowed` restricts the softmax (`recurrent_nats`)."""
    array = np.asarray(stream)[:max_tokens]
    if eot_id is not None:
        array = np.concatenate([np.array([eot_id], dtype=array.dtype), array])
    if array.ndim != 1 or len(array) < 2:
        raise ValueError(f"stream: expected a 1-D token array with at least one token to score, got {len(array)}")
    (nats,) = recurrent_nats(model, [array.astype(np.int64)], allowed=allowed)
    return float(nats.sum()), len(nats)


def recurrent_params(config) -> int:
    """Parameters of a StoryRNN with `config` (embedding, recurrent layers, unembedding with bias)."""
    gates = {"lstm": 4, "gru": 3}[config.architecture]
    width, vocab = config.d_model, config.d_vocab or 0
    per_layer = gates * (2 * width * width + 2 * width)  # input and recurrent matrices, two bias vectors
    return vocab * width + config.n_layers * per_layer + width * vocab + vocab


class RNNLM(ModuleLM):
    """A `StoryRNN` as a `storylab.lm.LanguageModel` (see the module docstring for how it scores).

    `train_tokens` are the tokens it was trained on (for `train_flops`); `batch_size` the
    sequences per forward pass when scoring.
    """

    family = "rnn"  # stride stays None (ModuleLM): no sliding window, the state runs over the whole story

    def __init__(self, module: StoryRNN, eot_id: int, *, train_tokens: int = 0, batch_size: int = 32):
        if not isinstance(module, StoryRNN):
            raise ValueError(f"module: expected a StoryRNN, got {type(module).__name__}")
        super().__init__(module, eot_id, module.config.d_vocab, train_tokens=train_tokens, batch_size=batch_size)

    def __repr__(self) -> str:
        return f"RNNLM({self.label}, vocab_size={self.vocab_size})"

    @property
    def label(self) -> str:
        config = self.module.config
        return f"{config.architecture} L{config.n_layers} d{config.d_model}"

    def token_nats(self, sequences) -> list[np.ndarray]:
        """−ln p of every token of every sequence, end-of-text before each, the state carried over the whole story."""
        return recurrent_nats(self.module, self.after_eot(sequences), self.batch_size)

    @torch.no_grad()
    def _logits_and_state(self, ids: list[int], state: State = None) -> tuple[torch.Tensor, State]:
        """Logits (len(ids), V) after each of `ids`, fed from `state`, and the state after the last."""
        tokens = torch.tensor([ids], dtype=torch.int64, device=self.device)
        rows = []
        with eval_mode(self.module):
            for start in range(0, len(ids), CHUNK_TOKENS):
                logits, state = self.module.run(tokens[:, start : start + CHUNK_TOKENS], state)
                rows.append(logits[0].double().cpu())
        return torch.cat(rows), state

    def next_token_probs(self, prefix_ids) -> np.ndarray:
        prefix = as_token_prefix(prefix_ids, self.vocab_size)
        logits, _ = self._logits_and_state([self.eot_id, *prefix.tolist()])
        return torch.softmax(logits[-1], dim=-1).numpy()

    def next_token_probs_all(self, ids) -> np.ndarray:
        """(len(ids) + 1, V) float64: row t is `next_token_probs(ids[:t])`, all from one pass."""
        prefix = as_token_prefix(ids, self.vocab_size)
        logits, _ = self._logits_and_state([self.eot_id, *prefix.tolist()])
        return torch.softmax(logits, dim=-1).numpy()

    def generate(self, prefix_ids, max_new_tokens: int, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0, stop_id=EOT, output_rule=None) -> np.ndarray:
        """New token ids after `prefix_ids` (see `storylab.lm`), one recurrent step per new token;
        an `output_rule` restricts each draw to the tokens it allows, as for `TransformerLM`."""
        context = [self.eot_id, *as_token_prefix(prefix_ids, self.vocab_size).tolist()]
        carried: dict = {"fed": 0, "state": None, "logits": None}  # the state after context[:fed]

        def predict(new_ids: list[int]) -> torch.Tensor:
            ids = context + new_ids
            logits, carried["state"] = self._logits_and_state(ids[carried["fed"] :], carried["state"])
            carried["fed"] = len(ids)
            last = logits[-1]
            if output_rule is not None:  # the rule reads the whole text so far
                last = restrict_logits(last, output_rule(torch.tensor([ids]))[0, -1])
            return torch.softmax(last, dim=-1)

        return generate_tokens(predict, max_new_tokens, vocab_size=self.vocab_size, eot_id=self.eot_id, greedy=greedy,
                               temperature=temperature, top_k=top_k, seed=seed, stop_id=stop_id)
