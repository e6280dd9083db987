"""The recurrent family (architecture="lstm" / "gru") through the transformer's training loop and loaders."""

import json

import numpy as np
import pytest
import torch

from storylab.lm import score
from storylab.tokenizers import train_tokenizer
from storylab.transformer import (RNNLM, ModelConfig, StoryRNN, TrainConfig, architecture_columns, export_hf, load_lm,
                                  load_model, load_result, to_bridge, train)
from storylab.transformer.output_rules import make_output_rule
from storylab.transformer.rnn import recurrent_evaluate, recurrent_params
from training_fixtures import TEXTS, quick_config, streams, tokenizer  # noqa: F401 (shared fixtures)

LSTM = ModelConfig(architecture="lstm", n_layers=1, d_model=16, n_ctx=8)


def test_an_lstm_trains_through_train_and_scores_like_its_language_model(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    untrained = StoryRNN(LSTM.with_vocab(len(tokenizer)), seed=1)
    recipe = quick_config(max_steps=12, decay_steps=10, base_lr=3e-2)
    result = train(LSTM, recipe, train_stream, val_stream, tmp_path / "run", tokenizer=tokenizer, progress=False)
    assert isinstance(result.model, StoryRNN) and result.val_stride is None
    lm = result.lm
    assert isinstance(lm, RNNLM) and lm.family == "rnn" and lm.label == "lstm L1 d16"
    assert lm.n_params == result.n_params == recurrent_params(result.model_config)
    # the final figure reads the validation stream in one pass, state carried: its token_nats after end-of-text
    (nats,) = lm.token_nats([val_stream])
    assert result.val_total_nats == pytest.approx(nats.sum(), rel=1e-6) and result.val_n_tokens == len(val_stream)
    (untrained_nats,) = RNNLM(untrained, tokenizer.eos_token_id).token_nats([val_stream])
    assert result.val_total_nats < 0.9 * untrained_nats.sum()
    assert list(result.eval_log["step"]) == [3, 6, 9, 12]


def test_a_resumed_lstm_run_ends_with_the_same_weights(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    unbroken = train(LSTM, quick_config(), train_stream, val_stream, tmp_path / "a", tokenizer=tokenizer, progress=False)
    train(LSTM, quick_config(max_steps=3), train_stream, val_stream, tmp_path / "b", tokenizer=tokenizer, progress=False)
    resumed = train(LSTM, quick_config(), train_stream, val_stream, tmp_path / "b", tokenizer=tokenizer, progress=False)
    for name, value in unbroken.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert resumed.val_total_nats == unbroken.val_total_nats


def test_a_run_folder_loads_back_as_model_language_model_and_result(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    result = train(ModelConfig(architecture="gru", n_layers=2, d_model=8, n_ctx=8), quick_config(max_steps=3),
                   train_stream, val_stream, tmp_path, tokenizer=tokenizer, progress=False)
    model, saved_tokenizer, config = load_model(tmp_path, device="cpu")
    assert isinstance(model, StoryRNN) and config.architecture == "gru" and len(saved_tokenizer) == len(tokenizer)
    lm, _ = load_lm(tmp_path, device="cpu")
    assert isinstance(lm, RNNLM) and lm.train_tokens == result.train_tokens
    split = [np.array([5, 6, 7, tokenizer.eos_token_id])]
    assert score(lm, split, n_chars=3).total_nats == pytest.approx(score(result.lm, split, n_chars=3).total_nats)
    loaded = load_result(tmp_path, device="cpu")
    assert loaded.val_total_nats == result.val_total_nats and loaded.val_stride is None
    assert loaded.log["train_loss"].tolist() == result.log["train_loss"].tolist()
    for name, value in result.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[name]), name
    with pytest.raises(ValueError, match="^stride: a recurrent model"):
        load_lm(tmp_path, device="cpu", stride=4)


def test_transformerlens_and_gpt2_refuse_an_lstm_in_one_line(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    result = train(LSTM, quick_config(max_steps=1, warmup_steps=1), train_stream, val_stream, tmp_path / "run", tokenizer=tokenizer,
                   progress=False)
    with pytest.raises(ValueError, match=r"^model_or_run: TransformerLens has no LSTM; to_bridge opens transformers only"):
        to_bridge(tmp_path / "run")
    with pytest.raises(ValueError, match="^model_or_run: TransformerLens has no LSTM"):
        to_bridge(result)
    with pytest.raises(ValueError, match="^architecture: GPT-2 has no LSTM"):
        export_hf(result, tmp_path / "hf")


@pytest.mark.parametrize("option, message", [
    (dict(attention="topk", attention_k=2), "^attention: 'topk' is a transformer option and architecture='lstm' has no attention"),
    (dict(mlp="moe", n_experts=2), "^mlp: 'moe' is a transformer option"),
    (dict(objective="masked"), "^objective: 'masked' is a transformer option"),
    (dict(architecture="mamba"), r"^architecture: expected one of \('transformer', 'lstm', 'gru'\)"),
])
def test_options_without_meaning_for_an_rnn_are_one_line_errors(option, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{"architecture": "lstm", **option})


def test_an_rnn_ignores_the_transformer_shape_fields():
    config = ModelConfig(architecture="lstm", d_model=30, n_heads=4, act_fn="relu", normalization="RMS", d_vocab=11)
    assert config.d_head is None and config.d_mlp is None  # d_model=30 with 4 heads is no error: no heads
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert StoryRNN(config).n_params == recurrent_params(config)
    assert architecture_columns(config, TrainConfig())["architecture"] == "LSTM"
    gru = ModelConfig(architecture="gru", n_layers=3, d_model=7, d_vocab=5)
    assert StoryRNN(gru).n_params == recurrent_params(gru)


def test_the_same_seed_gives_the_same_weights():
    config = LSTM.with_vocab(12)
    first, second, other = StoryRNN(config, seed=3), StoryRNN(config, seed=3), StoryRNN(config, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not torch.equal(first.rnn.weight_hh_l0, other.rnn.weight_hh_l0)
    assert float(first.rnn.bias_ih_l0[16:32].detach().min()) == 1.0  # the forget gate starts open


def test_the_output_rule_trains_an_rnn_too(tmp_path):
    problems = ["12 + 30 = 42;", "7 + 8 = 15;", "3 + 4 = 7;"] * 4
    tokenizer = train_tokenizer("char", problems)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in problems]
    stream = np.concatenate(ids).astype(np.uint16)
    result = train(LSTM, quick_config(max_steps=3, output_rule="addition"), stream, stream[:40], tmp_path,
                   tokenizer=tokenizer, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "eval_log.jsonl").read_text().splitlines()]
    assert rows[-1]["val_loss_restricted"] < rows[-1]["val_loss"]  # the same one-pass reading, a smaller softmax
    everything = lambda ids: torch.ones(*ids.shape, len(tokenizer), dtype=torch.bool)  # noqa: E731
    assert recurrent_evaluate(result.model, stream[:40], tokenizer.eos_token_id, allowed=everything) == pytest.approx(
        recurrent_evaluate(result.model, stream[:40], tokenizer.eos_token_id), rel=1e-12)
    prompt = tokenizer("1 + 2 =", add_special_tokens=False)["input_ids"]
    answer = result.lm.generate(prompt, 4, greedy=True, stop_id=None, output_rule=make_output_rule("addition", tokenizer))
    assert set(tokenizer.decode(answer.tolist())) <= set("0123456789 ;")
