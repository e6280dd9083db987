"""The transformer package: schedule, exact validation scores, resumable training,
the TransformerLens bridge, the Hugging Face export, and the generation / next-token helpers."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

from storylab.paths import NOTEBOOKS_DIR
from storylab.transformer import (
    ModelConfig,
    StoryTransformer,
    TrainConfig,
    addition_accuracy,
    addition_predictions,
    configs_from_params,
    evaluate,
    export_hf,
    generate,
    learning_rate,
    load_lm,
    load_model,
    load_result,
    load_run,
    next_token_table,
    to_bridge,
    train,
)
from storylab.transformer.data import check_stream, train_batch
from training_fixtures import TEXTS, quick_config, streams, tokenizer  # noqa: F401 (shared fixtures)

TINY = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=8)


# --- schedule -------------------------------------------------------------------------

def test_schedule_warms_up_linearly_decays_by_cosine_then_stays_at_min_lr():
    lr = [learning_rate(s, base_lr=1.0, min_lr=0.1, warmup_steps=4, decay_steps=10) for s in range(20)]
    assert lr[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lr[4] == pytest.approx(1.0)
    assert lr[9] == pytest.approx(0.55)  # halfway through the decay: the midpoint of base and min
    assert all(a >= b for a, b in zip(lr[4:14], lr[5:15]))
    assert lr[14:] == pytest.approx([0.1] * 6)


def test_schedule_without_warmup_starts_at_base_lr():
    assert learning_rate(0, 2.0, 0.0, warmup_steps=0, decay_steps=5) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "factory, name",
    [
        (lambda: ModelConfig(d_model=10, n_heads=3), "d_head"),
        (lambda: ModelConfig(normalization="batch"), "normalization"),
        (lambda: ModelConfig(act_fn="tanh"), "act_fn"),
        (lambda: ModelConfig(n_layers=0), "n_layers"),
        (lambda: TrainConfig(min_lr=1.0, base_lr=0.1), "min_lr"),
        (lambda: TrainConfig(max_steps=None, max_minutes=None), "max_steps"),
        (lambda: TrainConfig(batch_size=0), "batch_size"),
    ],
)
def test_bad_config_is_a_one_line_error_naming_the_parameter(factory, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        factory()


# --- evaluation ------------------------------------------------------------------------

class UniformModel(torch.nn.Module):
    """Zero logits: every token costs exactly ln(vocab)."""

    def __init__(self, vocab, n_ctx):
        super().__init__()
        self.config = ModelConfig(n_layers=1, d_model=4, n_heads=1, n_ctx=n_ctx, d_vocab=vocab)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids):
        return torch.zeros(*ids.shape, self.config.d_vocab) + 0 * self.dummy


def brute_force_nats(model, stream, n_ctx, stride):
    """−ln p of each target with the context the documented windowing gives it."""
    tokens = torch.tensor(np.asarray(stream, dtype=np.int64))
    total = 0.0
    for target in range(1, len(tokens)):
        first_window = 0 if target <= n_ctx else ((target - n_ctx - 1) // stride + 1) * stride
        context = tokens[first_window:target]
        logits = model(context[None])[0, -1]
        total -= torch.log_softmax(logits.double(), -1)[tokens[target]].item()
    return total


def test_evaluate_scores_every_token_once_including_the_first_after_eot(tokenizer, streams):
    stream, vocab = streams[1], len(tokenizer)
    total, n = evaluate(UniformModel(vocab, 8), stream, eot_id=tokenizer.eos_token_id)
    assert n == len(stream)
    assert total == pytest.approx(len(stream) * math.log(vocab))


@pytest.mark.parametrize("stride", [8, 5, 1])
def test_evaluate_matches_brute_force_for_each_stride(tokenizer, streams, stride):
    model = StoryTransformer(TINY.with_vocab(len(tokenizer)), seed=3).eval()
    stream = streams[1][:23]
    total, n = evaluate(model, stream, stride=stride, batch_size=3)
    assert n == len(stream) - 1
    assert total == pytest.approx(brute_force_nats(model, stream, 8, stride), rel=1e-5)


# --- training and resume ----------------------------------------------------------------

def read_log(folder, name="train_log.jsonl"):
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


def test_training_lowers_validation_loss_and_writes_the_run_folder(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    result = train(TINY, quick_config(max_steps=12, decay_steps=10), train_stream, val_stream, tmp_path / "run",
                   tokenizer=tokenizer, progress=False)
    untrained_model = StoryTransformer(TINY.with_vocab(len(tokenizer)), seed=1)
    untrained, _ = evaluate(untrained_model, val_stream, eot_id=tokenizer.eos_token_id)
    assert result.val_total_nats < 0.9 * untrained
    assert result.val_n_tokens == len(val_stream)
    assert list(result.log["step"]) == list(range(1, 13))
    assert list(result.eval_log["step"]) == [3, 6, 9, 12]
    assert {"train_loss", "lr", "tokens_seen", "elapsed_s", "tokens_per_s", "peak_rss_mb"} <= set(result.log.columns)
    assert result.train_tokens == 12 * 4 * 8
    assert result.n_params == sum(p.numel() for p in result.model.parameters())
    folder = tmp_path / "run"
    assert {"config.yaml", "tokenizer", "checkpoints", "train_log.jsonl", "eval_log.jsonl", "result.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert [p.name for p in (folder / "checkpoints").iterdir()] == ["step_00000012"]  # older ones dropped
    assert result.val_bits_per_char(100) == pytest.approx(result.val_total_nats / math.log(2) / 100)


def test_a_memory_mapped_stream_is_trained_on_in_place(tmp_path, tokenizer, streams, monkeypatch):
    """The windows come from the file map itself (no copy of the stream), and give the run an in-memory stream gives."""
    import storylab.transformer.training as training
    from storylab.memory_maps import read_only_map

    train_stream, val_stream = streams
    np.save(tmp_path / "stream.npy", train_stream)
    mapped = np.load(tmp_path / "stream.npy", mmap_mode="r")
    drawn_from = []

    def recording_batch(stream, *args):
        drawn_from.append(read_only_map(stream))
        return draw_batch(stream, *args)

    draw_batch = training.train_batch
    monkeypatch.setattr(training, "train_batch", recording_batch)
    config = quick_config(max_steps=3, save_every=3)
    from_map = train(TINY, config, mapped, val_stream, tmp_path / "map", tokenizer=tokenizer, progress=False)
    assert drawn_from == [mapped.base] * 3
    in_memory = train(TINY, config, np.asarray(train_stream), val_stream, tmp_path / "memory", tokenizer=tokenizer, progress=False)
    assert from_map.val_total_nats == in_memory.val_total_nats


def test_resumed_run_ends_with_the_same_weights_as_an_unbroken_one(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    unbroken = train(TINY, quick_config(), train_stream, val_stream, tmp_path / "a", tokenizer=tokenizer,
                     progress=False)
    train(TINY, quick_config(max_steps=3), train_stream, val_stream, tmp_path / "b", tokenizer=tokenizer,
          progress=False)
    with open(tmp_path / "b" / "train_log.jsonl", "a") as log:  # a killed run logged past its checkpoint
        log.write(json.dumps({"step": 4, "train_loss": 99.0}) + "\n")
    resumed = train(TINY, quick_config(), train_stream, val_stream, tmp_path / "b", tokenizer=tokenizer,
                    progress=False)
    for name, value in unbroken.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert [r["train_loss"] for r in read_log(tmp_path / "a")] == [r["train_loss"] for r in read_log(tmp_path / "b")]
    assert resumed.val_total_nats == unbroken.val_total_nats


def test_a_run_without_its_final_evaluation_says_so_and_loads_the_same(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    result = train(TINY, quick_config(max_steps=3), train_stream, val_stream, tmp_path, tokenizer=tokenizer,
                   progress=False, final_eval=False)
    assert (result.val_total_nats, result.val_n_tokens, result.val_stride, result.val_loss) == (None, None, None, None)
    assert len(result.eval_log) == 1  # the periodic evaluations stay
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["val_nats_per_token"] is None and summary["val_total_nats"] is None
    loaded = load_result(tmp_path)
    assert loaded.val_total_nats is None and loaded.summary() == result.summary()
    with pytest.raises(ValueError, match="^val_bits_per_char: this run skipped its final evaluation"):
        result.val_bits_per_char(100)
    with pytest.raises(ValueError, match="^final_eval: expected True or False"):
        train(TINY, quick_config(), train_stream, val_stream, tmp_path / "x", tokenizer=tokenizer, final_eval="no")


def test_time_budget_stops_training_and_still_saves(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    result = train(TINY, quick_config(max_steps=None, max_minutes=1e-4), train_stream, val_stream, tmp_path,
                   tokenizer=tokenizer, progress=False)
    steps = len(result.log)
    assert 1 <= steps < 1000
    assert (tmp_path / "checkpoints" / f"step_{steps:08d}").is_dir()
    assert list(result.eval_log["step"]) == sorted({*range(3, steps + 1, 3), steps})


def test_resume_refuses_a_different_model_and_resume_false_refuses_to_overwrite(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    train(TINY, quick_config(max_steps=1), train_stream, val_stream, tmp_path, tokenizer=tokenizer, progress=False)
    with pytest.raises(ValueError, match="^model_config"):
        train(ModelConfig(n_layers=2, d_model=16, n_heads=2, n_ctx=8), quick_config(), train_stream, val_stream,
              tmp_path, tokenizer=tokenizer, progress=False)
    with pytest.raises(ValueError, match="^train_config.*base_lr"):
        train(TINY, quick_config(base_lr=0.5), train_stream, val_stream, tmp_path, tokenizer=tokenizer,
              progress=False)
    with pytest.raises(ValueError, match="^out_dir"):
        train(TINY, quick_config(), train_stream, val_stream, tmp_path, tokenizer=tokenizer, resume=False,
              progress=False)


def test_bad_streams_fail_before_anything_is_written(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    with pytest.raises(ValueError, match=rf"^train_stream: token ids must lie in \[0, {len(tokenizer)}\)"):
        train(TINY, quick_config(), train_stream + 100, val_stream, tmp_path / "x", tokenizer=tokenizer)
    with pytest.raises(ValueError, match="^train_stream: expected at least 9 tokens"):
        train(TINY, quick_config(), train_stream[:5], val_stream, tmp_path / "x", tokenizer=tokenizer)
    with pytest.raises(ValueError, match="^vocab_size"):
        train(TINY, quick_config(), train_stream, val_stream, tmp_path / "x", vocab_size=50, tokenizer=tokenizer)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("stream, message", [
    (np.zeros((2, 4), dtype=np.int64), "expected a 1-D array of integer token ids, got shape (2, 4) int64"),
    (np.zeros(4, dtype=np.float32), "expected a 1-D array of integer token ids, got shape (4,) float32"),
    (np.arange(3), "expected at least 4 tokens, got 3"),
    (np.array([0, 1, 5, 2]), "token ids must lie in [0, 5) (vocab_size), found [0, 5]"),
    (np.array([0, -1, 2, 3]), "token ids must lie in [0, 5) (vocab_size), found [-1, 3]"),
])
def test_bad_token_streams_are_one_line_errors(stream, message):
    with pytest.raises(ValueError) as error:
        check_stream("train_stream", stream, vocab_size=5, min_len=4)
    assert str(error.value) == f"train_stream: {message}"
    edge = check_stream("train_stream", np.array([0, 4, 4, 1]), vocab_size=5, min_len=4)  # just long enough, top id
    assert edge.tolist() == [0, 4, 4, 1]


def test_a_token_stream_may_be_any_integer_sequence_and_an_array_is_never_copied():
    assert check_stream("s", [3, 0, 2], vocab_size=4, min_len=3).tolist() == [3, 0, 2]
    assert check_stream("s", np.array([], dtype=np.int32), vocab_size=1, min_len=0).tolist() == []  # nothing to range-check
    stream = np.array([1, 2], dtype=np.uint16)
    assert check_stream("s", stream, vocab_size=3, min_len=2) is stream


def test_training_windows_are_n_ctx_plus_one_tokens_from_any_start_reproducible_per_step():
    whole = train_batch(np.arange(6), n_ctx=5, batch_size=3, seed=0, step=0)  # one window fits: the whole stream
    assert whole.dtype == torch.int64 and whole.tolist() == [list(range(6))] * 3
    windows = [train_batch(np.arange(8), 5, 4, seed=1, step=step) for step in range(30)]
    assert {tuple(row) for batch in windows for row in batch.tolist()} == {tuple(range(s, s + 6)) for s in range(3)}
    assert torch.equal(train_batch(np.arange(100), 4, 8, 3, 7), train_batch(np.arange(100), 4, 8, 3, 7))
    assert not torch.equal(train_batch(np.arange(100), 4, 8, 3, 7), train_batch(np.arange(100), 4, 8, 3, 8))


# --- TransformerLens bridge ---------------------------------------------------------------

@pytest.mark.parametrize("normalization", ["LN", "RMS", None])
def test_bridge_logits_equal_the_training_model(tokenizer, normalization):
    config = ModelConfig(n_layers=2, d_model=16, n_heads=2, d_head=5, d_mlp=24, n_ctx=8,
                         normalization=normalization, act_fn="gelu", d_vocab=len(tokenizer))
    model = StoryTransformer(config, seed=0).eval()
    with torch.no_grad():  # move away from the init (unit norms, zero biases) so every weight matters
        for param in model.parameters():
            param.add_(0.3 * torch.randn_like(param))
    bridge = to_bridge(model, tokenizer)
    ids = torch.randint(0, len(tokenizer), (3, 8))
    with torch.no_grad():
        torch.testing.assert_close(bridge(ids), model(ids), atol=1e-5, rtol=1e-5)
    assert tokenizer.bos_token is None  # the caller's tokenizer is left as it was


def test_load_run_gives_a_bridge_with_the_standard_hooks_and_weights(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    result = train(TINY, quick_config(max_steps=2), train_stream, val_stream, tmp_path / "run",
                   tokenizer=tokenizer, progress=False)
    folded = to_bridge(result)  # a TrainResult brings its saved tokenizer
    assert folded.to_tokens("Lily ran")[0, 0].item() == tokenizer.eos_token_id
    run_folder = tmp_path / "notebook_run"
    shutil.move(tmp_path / "run", run_folder / "model")  # load_run also finds a run's model/ folder
    bridge, loaded_tokenizer, config = load_run(run_folder)
    assert config == TINY.with_vocab(len(tokenizer))
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    ids = bridge.to_tokens("Lily ran")
    assert ids[0, 0].item() == tokenizer.eos_token_id  # BOS is end-of-text, as before every training story
    with torch.no_grad():
        torch.testing.assert_close(bridge(ids), result.model(ids), atol=1e-5, rtol=1e-5)
    _, cache = bridge.run_with_cache(ids)
    for name in ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_pattern",
                 "blocks.0.attn.hook_z", "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid",
                 "blocks.0.mlp.hook_post", "blocks.0.hook_resid_post", "ln_final.hook_normalized"]:
        assert name in cache, name
    assert cache["blocks.0.attn.hook_pattern"].shape == (1, 2, ids.shape[1], ids.shape[1])
    d_vocab = len(tokenizer)
    expected = {"W_E": (d_vocab, 16), "W_pos": (8, 16), "W_U": (16, d_vocab), "W_Q": (1, 2, 16, 8),
                "W_K": (1, 2, 16, 8), "W_V": (1, 2, 16, 8), "W_O": (1, 2, 8, 16), "W_in": (1, 16, 32),
                "W_out": (1, 32, 16), "b_Q": (1, 2, 8), "b_O": (1, 16), "b_U": (d_vocab,)}
    for name, shape in expected.items():
        assert tuple(getattr(bridge, name).shape) == shape, name
    torch.testing.assert_close(bridge.W_E, result.model.tok_embed.weight)
    torch.testing.assert_close(bridge.W_Q[0, 1], result.model.layers[0].attn.q.weight[8:].T)
    model, _, _ = load_model(run_folder)
    torch.testing.assert_close(model(ids), result.model(ids))
    folded.enable_compatibility_mode()  # HookedTransformer-style folded layer norms: same predictions
    with torch.no_grad():
        torch.testing.assert_close(folded(ids).log_softmax(-1), result.model(ids).log_softmax(-1), atol=1e-5, rtol=0)


# --- generation and next-token helpers -----------------------------------------------------

class ScriptedModel(torch.nn.Module):
    """Predicts from the decoded context with a Python function: for exact expectations."""

    def __init__(self, tokenizer, next_text):
        super().__init__()
        self.tokenizer, self.next_text = tokenizer, next_text
        self.config = ModelConfig(n_layers=1, d_model=4, n_heads=1, n_ctx=64, d_vocab=len(tokenizer))
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids):
        logits = torch.full((*ids.shape, len(self.tokenizer)), -10.0)
        for row in range(ids.shape[0]):
            for position in range(ids.shape[1]):  # causal: each position sees the text up to itself
                text = self.tokenizer.decode(ids[row, : position + 1].tolist(), skip_special_tokens=True)
                for token, logit in self.next_text(text).items():
                    assert token in self.tokenizer.get_vocab(), token
                    logits[row, position, self.tokenizer.convert_tokens_to_ids(token)] = logit
        return logits


def adder(text):
    """The right next character of an 'a + b = ' problem, then ';' (no opinion before the '= ')."""
    if "= " not in text:
        return {}
    question, _, written = text.rpartition("= ")
    a, b = (int(x) for x in question.split("+"))
    answer = f"{a + b};"
    return {answer[len(written)] if len(written) < len(answer) else ";": 5.0}


def test_next_token_table_lists_the_most_likely_tokens_with_exact_probabilities(tokenizer):
    model = ScriptedModel(tokenizer, lambda text: {"a": math.log(6.0) - 10, "n": math.log(3.0) - 10})
    table = next_token_table(model, tokenizer, "Tim", k=3)
    rest = len(tokenizer) - 2  # every other token has logit -10, i.e. weight 1 against a's 6 and b's 3
    assert table[0] == ("a", pytest.approx(6 / (9 + rest)))
    assert table[1] == ("n", pytest.approx(3 / (9 + rest)))
    assert table[2][1] == pytest.approx(1 / (9 + rest))
    assert repr(table).startswith(f"[('a', {600 / (9 + rest):.1f}%), ('n', {300 / (9 + rest):.1f}%)")


def test_addition_accuracy_is_exact_match_of_the_greedy_answer(tokenizer):
    model = ScriptedModel(tokenizer, adder)
    problems = ["12 + 30 = 42", "7 + 8 = 15", "2 + 2 = 5", ("3 + 4 = ", "7")]  # the third's answer is wrong
    table = addition_predictions(model, tokenizer, problems)
    assert list(table["predicted"]) == ["42", "15", "4", "7"]
    assert addition_accuracy(model, tokenizer, problems) == pytest.approx(0.75)
    never_stops = ScriptedModel(tokenizer, lambda text: {"4": 5.0})
    assert addition_accuracy(never_stops, tokenizer, ["2 + 2 = 4"]) == 0.0


def test_an_untrained_model_cannot_add(tokenizer):
    model = StoryTransformer(ModelConfig(n_layers=1, d_model=16, n_heads=2, n_ctx=16, d_vocab=len(tokenizer)))
    rng = np.random.default_rng(0)
    problems = [f"{a} + {b} = {a + b}" for a, b in rng.integers(10, 50, size=(20, 2))]
    assert addition_accuracy(model, tokenizer, problems) <= 0.1


def test_generate_is_reproducible_and_greedy_follows_the_argmax(tokenizer):
    model = StoryTransformer(TINY.with_vocab(len(tokenizer)), seed=0)
    with torch.no_grad():
        model.head.weight.mul_(50)  # a peaked distribution, so samples differ from seed to seed
    first = generate(model, tokenizer, "Tim", max_new_tokens=20, seed=1, stop_at_eot=False)
    assert first == generate(model, tokenizer, "Tim", max_new_tokens=20, seed=1, stop_at_eot=False)
    assert len(tokenizer(first, add_special_tokens=False)["input_ids"]) == 20
    greedy = generate(model, tokenizer, "Tim", max_new_tokens=10, greedy=True, stop_at_eot=False)
    assert greedy == generate(model, tokenizer, "Tim", max_new_tokens=10, top_k=1, seed=5, stop_at_eot=False)
    scripted = ScriptedModel(tokenizer, adder)
    assert generate(scripted, tokenizer, "12 + 30 = ", stop=";", max_new_tokens=50) == "42;"
    with pytest.raises(ValueError, match="^temperature"):
        generate(model, tokenizer, "Tim", temperature=0)


# --- one source of defaults, warm-up, imports ------------------------------------------------

def test_config_defaults_are_the_notebook_parameters():
    from storylab.runner.params import notebook_parameters

    defaults = {name: p.default for name, p in notebook_parameters(NOTEBOOKS_DIR / "03_transformer.ipynb").items()}
    model_config, train_config = configs_from_params(defaults)
    assert model_config == ModelConfig() and train_config == TrainConfig()
    shared = (set(ModelConfig().to_dict()) | set(TrainConfig().to_dict())) & set(defaults)
    assert {"batch_size", "decay_steps", "eval_every", "n_layers", "seed"} <= shared
    model_config, train_config = configs_from_params({**defaults, "batch_size": 3, "n_ctx": 32}, d_vocab=11)
    assert (train_config.batch_size, model_config.n_ctx, model_config.d_vocab) == (3, 32, 11)
    with pytest.raises(ValueError, match="^batch_size"):
        configs_from_params({"batch_size": 0})


def test_a_run_shorter_than_its_warmup_warns_once(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    with pytest.warns(UserWarning, match=r"^warmup_steps: max_steps=2 ends before the 5-step warm-up") as caught:
        train(TINY, quick_config(max_steps=2, warmup_steps=5), train_stream, val_stream, tmp_path, tokenizer=tokenizer,
              progress=False)
    assert len([w for w in caught if "warm-up" in str(w.message)]) == 1


def test_transformer_modules_import_only_downwards():
    """No module of the package imports one that imports it back (directly or through others)."""
    import ast
    import importlib

    package = importlib.import_module("storylab.transformer")
    folder = package.__path__[0]
    names = [p.stem for p in __import__("pathlib").Path(folder).glob("*.py") if p.stem != "__init__"]
    edges = {}
    for name in names:
        tree = ast.parse((__import__("pathlib").Path(folder) / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        edges[name] = {m.rsplit(".", 1)[1] for m in imported if m.startswith("storylab.transformer.")}

    def reaches(start, target, seen=()):
        return any(n == target or (n not in seen and reaches(n, target, (*seen, n))) for n in edges.get(start, ()))

    assert [name for name in names if reaches(name, name)] == []


# --- loading and exporting a run ---------------------------------------------------------------

def test_damaged_model_files_are_one_line_errors_naming_the_file(tmp_path, tokenizer, streams):
    train_stream, val_stream = streams
    train(TINY, quick_config(max_steps=1), train_stream, val_stream, tmp_path / "run", tokenizer=tokenizer,
          progress=False)
    lm, loaded_tokenizer = load_lm(tmp_path / "run")
    assert lm.train_tokens == 4 * 8 and lm.eot_id == tokenizer.eos_token_id and lm.stride == 4
    exported = export_hf(tmp_path / "run", tmp_path / "hf")  # a run folder brings its own tokenizer
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in exported.iterdir()}
    tokenizer_json = tmp_path / "run" / "tokenizer" / "tokenizer.json"
    tokenizer_json.write_text(tokenizer_json.read_text()[:100])
    with pytest.raises(ValueError, match=rf"^tokenizer: '{tokenizer_json}' is not valid JSON") as error:
        load_model(tmp_path / "run")
    assert "\n" not in str(error.value)
    shutil.rmtree(tmp_path / "run" / "tokenizer")
    weights = next((tmp_path / "run" / "checkpoints").iterdir()) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(ValueError, match=rf"^checkpoint: {weights} is not a readable safetensors file .*truncated") as error:
        load_model(tmp_path / "run")
    assert "\n" not in str(error.value)


def trained_looking(config, tokenizer, seed=0):
    """A model moved away from its init (unit norms, zero biases) so every weight matters."""
    model = StoryTransformer(config.with_vocab(len(tokenizer)), seed=seed).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=torch.Generator().manual_seed(seed)))
    return model


def test_export_hf_gives_the_same_logits_scores_and_generates(tmp_path, tokenizer):
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    from storylab.transformer import TransformerLM

    config = ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=24, n_ctx=16, act_fn="gelu")
    model = trained_looking(config, tokenizer)
    folder = export_hf(model, tmp_path / "hf", tokenizer=tokenizer)
    hf_model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.randint(0, len(tokenizer), (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(hf_model(ids).logits, model(ids), atol=1e-5, rtol=0)
    # a harness encodes with the exported tokenizer (end-of-text first) and sums log-probs: storylab's token_nats
    hf_tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = hf_tokenizer("Tim sat.", return_tensors="pt")["input_ids"]
    assert encoded[0, 0].item() == tokenizer.eos_token_id
    with torch.no_grad():
        log_probs = hf_model(encoded).logits[0, :-1].double().log_softmax(-1)
    hf_nats = -log_probs.gather(1, encoded[0, 1:, None]).sum().item()
    story = tokenizer("Tim sat.", add_special_tokens=False)["input_ids"]
    assert hf_nats == pytest.approx(TransformerLM(model, tokenizer.eos_token_id).token_nats([story])[0].sum(), rel=1e-5)
    generated = pipeline("text-generation", model=str(folder))("Tim", max_new_tokens=4, do_sample=False)
    assert generated[0]["generated_text"].startswith("Tim") and len(generated[0]["generated_text"]) > 3
    assert generated[0]["generated_text"] == "Tim" + generate(model, tokenizer, "Tim", max_new_tokens=4, greedy=True,
                                                              stop_at_eot=False)
    with pytest.raises(ValueError, match="^folder: .* already exists"):
        export_hf(model, folder, tokenizer=tokenizer)


@pytest.mark.parametrize("option, expected", [
    ({"normalization": "RMS"}, "^normalization: GPT-2 has LayerNorm only"),
    ({"d_head": 5}, r"^d_head: GPT-2 needs d_head \* n_heads == d_model"),
    # these three used to export (or crash) as a dense causal GPT-2 with other logits
    ({"mlp": "moe", "n_experts": 2}, "^mlp: GPT-2 has mlp='dense' only, this model uses 'moe'"),
    ({"attention": "topk", "attention_k": 2}, "^attention: GPT-2 has attention='dense' only, this model uses 'topk'"),
    ({"objective": "masked"}, "^objective: GPT-2 has objective='causal' only, this model uses 'masked'"),
])
def test_export_hf_names_the_option_gpt2_cannot_express(tmp_path, tokenizer, option, expected):
    model = StoryTransformer(ModelConfig(n_layers=1, d_model=16, n_heads=2, n_ctx=8, d_vocab=len(tokenizer), **option))
    with pytest.raises(ValueError, match=expected) as error:
        export_hf(model, tmp_path / "hf", tokenizer=tokenizer)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "hf").exists()
