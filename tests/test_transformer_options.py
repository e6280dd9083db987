"""The architecture options of the transformer: top-k attention, mixture of experts,
restricted-output loss and sampling, the masked LM — their equalities with the plain model,
training and resume through `train()`, TransformerLens bridges, and the shipped sweep."""

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from storylab import interp
from storylab.corpora.addition import draw_problems
from storylab.tokenizers import train_tokenizer
from storylab.transformer import (
    ModelConfig,
    StoryTransformer,
    TrainConfig,
    active_params,
    addition_predictions,
    equal_active_moe,
    fill_mask,
    generate,
    register_output_rule,
    to_bridge,
    train,
    with_mask_token,
)
from storylab.prompts import UnknownTokenWarning
from storylab.transformer.masked import IGNORED, mask_windows
from storylab.transformer.moe import load_balancing_loss
from storylab.transformer.output_rules import addition_rule, restricted_cross_entropy, restricted_nats
from storylab.transformer.scoring import evaluate, window_nats
from storylab.transformer.runs import load_model, load_tokenizer
from storylab.transformer.training import read_run_config, write_run_config

TINY = dict(n_layers=2, d_model=16, n_heads=2, d_mlp=24, n_ctx=12)
OPTIONS = {
    "dense": {},
    "topk": dict(attention="topk", attention_k=3),
    "moe": dict(mlp="moe", n_experts=3, experts_per_token=2),
    "masked": dict(objective="masked"),
    "masked topk moe": dict(objective="masked", attention="topk", attention_k=2, mlp="moe", n_experts=2),
}


def addition_problems(n: int, low: int, high: int, seed: int) -> list[str]:
    """`n` problems with operands uniform over [low, high] (every pair allowed)."""
    return draw_problems(n, (0, (high - low + 1) ** 2), low, high, seed, stream=0)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer("char", addition_problems(50, 0, 99, 0) + ["Once upon a time, Lily ran."])


@pytest.fixture(scope="module")
def streams(tokenizer):
    problems = addition_problems(120, 0, 99, 1)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in problems]
    stream = np.concatenate(ids).astype(np.uint16)
    return stream[200:], stream[:200]


def config(tokenizer, name="dense", **overrides):
    options = {**OPTIONS[name]}
    vocab = len(tokenizer) + (options.get("objective") == "masked")
    if options.get("objective") == "masked":
        options["mask_id"] = len(tokenizer)
    return ModelConfig(**{**TINY, "d_vocab": vocab, **options, **overrides})


def perturbed(model):
    """The model with every weight moved off its initial value (unit norms, zero biases), so all of them matter."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=generator))
    return model.eval()


def quick(**overrides):
    defaults = dict(batch_size=4, base_lr=1e-2, min_lr=1e-3, warmup_steps=2, decay_steps=4, max_steps=6,
                    eval_every=3, eval_tokens=64, save_every=3, seed=1)
    return TrainConfig(**{**defaults, **overrides})


# --- configs ---------------------------------------------------------------------------------

def test_options_round_trip_through_the_run_config(tmp_path, tokenizer):
    model_config = config(tokenizer, "masked topk moe")
    train_config = quick(aux_loss_weight=0.1, mask_rate=0.2, output_rule=None)
    write_run_config(tmp_path, model_config, train_config)
    assert read_run_config(tmp_path) == (model_config, train_config)
    assert model_config.experts_per_token == 1  # filled in: Switch-style top-1
    restricted = quick(output_rule="addition")
    assert TrainConfig.from_dict(restricted.to_dict()) == restricted
    theirs = quick(output_rule="a_rule_registered_elsewhere")  # a run folder loads without the user's rule
    write_run_config(tmp_path, model_config, theirs)
    assert read_run_config(tmp_path)[1].output_rule == "a_rule_registered_elsewhere"


def test_a_config_yaml_from_before_the_options_loads_as_the_plain_model(tmp_path):
    old = {k: v for k, v in ModelConfig(d_vocab=20).to_dict().items()
           if k not in ("attention", "attention_k", "mlp", "n_experts", "experts_per_token", "objective", "mask_id")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": old, "train": {"batch_size": 8}}))
    model_config, _ = read_run_config(tmp_path)
    assert (model_config.attention, model_config.mlp, model_config.objective) == ("dense", "dense", "causal")


@pytest.mark.parametrize("overrides, name", [
    (dict(attention="sparse"), "attention"),
    (dict(attention="topk"), "attention_k"),
    (dict(attention="topk", attention_k=0), "attention_k"),
    (dict(attention_k=4), "attention_k"),
    (dict(mlp="moe"), "n_experts"),
    (dict(mlp="moe", n_experts=2, experts_per_token=3), "experts_per_token"),
    (dict(n_experts=4), "n_experts"),
    (dict(objective="bert"), "objective"),
    (dict(mask_id=3), "mask_id"),
    (dict(objective="masked", mask_id=20, d_vocab=20), "mask_id"),
])
def test_bad_model_options_are_one_line_errors_naming_the_parameter(overrides, name):
    with pytest.raises(ValueError, match=rf"^{name}: [^\n]*$"):
        ModelConfig(**overrides)


@pytest.mark.parametrize("overrides, name", [
    (dict(aux_loss_weight=-1.0), "aux_loss_weight"),
    (dict(output_rule=""), "output_rule"),
    (dict(mask_rate=1.0), "mask_rate"),
])
def test_bad_train_options_are_one_line_errors_naming_the_parameter(overrides, name):
    with pytest.raises(ValueError, match=rf"^{name}: [^\n]*$"):
        TrainConfig(**overrides)


# --- the default model is today's model --------------------------------------------------------

def reference_weights(config: ModelConfig, seed: int) -> dict:
    """The plain model's initialisation as it was before the options (GPT-2 init, one generator)."""
    shapes = {"tok_embed.weight": (config.d_vocab, config.d_model), "pos.weight": (config.n_ctx, config.d_model)}
    inner = config.n_heads * config.d_head
    for i in range(config.n_layers):
        shapes.update({f"layers.{i}.ln1.weight": (config.d_model,), f"layers.{i}.ln1.bias": (config.d_model,)})
        for proj in "qkv":
            shapes.update({f"layers.{i}.attn.{proj}.weight": (inner, config.d_model), f"layers.{i}.attn.{proj}.bias": (inner,)})
        shapes.update({f"layers.{i}.attn.o.weight": (config.d_model, inner), f"layers.{i}.attn.o.bias": (config.d_model,),
                       f"layers.{i}.ln2.weight": (config.d_model,), f"layers.{i}.ln2.bias": (config.d_model,),
                       f"layers.{i}.mlp.fc_in.weight": (config.d_mlp, config.d_model), f"layers.{i}.mlp.fc_in.bias": (config.d_mlp,),
                       f"layers.{i}.mlp.fc_out.weight": (config.d_model, config.d_mlp), f"layers.{i}.mlp.fc_out.bias": (config.d_model,)})
    shapes.update({"ln_out.weight": (config.d_model,), "ln_out.bias": (config.d_model,), "head.weight": (config.d_vocab, config.d_model)})
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in shapes.items():
        if name.endswith("bias"):
            weights[name] = torch.zeros(shape)
        elif len(shape) == 1:
            weights[name] = torch.ones(shape)
        else:
            std = 0.02 / math.sqrt(2 * config.n_layers) if name.endswith(("attn.o.weight", "mlp.fc_out.weight")) else 0.02
            weights[name] = torch.randn(shape, generator=generator) * std
    return weights


def reference_forward(w: dict, config: ModelConfig, ids: torch.Tensor) -> torch.Tensor:
    """The plain model's forward pass as it was before the options (pre-LN, fused causal attention)."""
    batch, seq = ids.shape
    x = w["tok_embed.weight"][ids] + w["pos.weight"][:seq]

    def norm(t, name):
        return F.layer_norm(t, (config.d_model,), w[f"{name}.weight"], w[f"{name}.bias"], config.eps)

    def linear(t, name):
        return F.linear(t, w[f"{name}.weight"], w.get(f"{name}.bias"))

    for i in range(config.n_layers):
        h = norm(x, f"layers.{i}.ln1")
        q, k, v = (linear(h, f"layers.{i}.attn.{p}").view(batch, seq, config.n_heads, config.d_head).transpose(1, 2)
                   for p in "qkv")
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + linear(z.transpose(1, 2).reshape(batch, seq, -1), f"layers.{i}.attn.o")
        h = norm(x, f"layers.{i}.ln2")
        x = x + linear(F.gelu(linear(h, f"layers.{i}.mlp.fc_in"), approximate="tanh"), f"layers.{i}.mlp.fc_out")
    return linear(norm(x, "ln_out"), "head")


def test_the_default_model_has_todays_weights_and_forward_bit_for_bit():
    config = ModelConfig(n_layers=2, d_model=32, n_heads=4, n_ctx=16, d_vocab=40)
    model = StoryTransformer(config, seed=7)
    reference = reference_weights(config, seed=7)
    assert list(model.state_dict()) == list(reference)
    for name, value in model.state_dict().items():
        assert torch.equal(value, reference[name]), name
    ids = torch.randint(0, 40, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(ids), reference_forward(reference, config, ids))


# --- top-k attention ---------------------------------------------------------------------------

@pytest.mark.parametrize("objective", ["causal", "masked"])
@pytest.mark.parametrize("k", [12, 50])
def test_topk_with_k_at_least_the_context_is_dense_attention(tokenizer, objective, k):
    options = dict(objective=objective, mask_id=len(tokenizer) if objective == "masked" else None)
    dense = perturbed(StoryTransformer(ModelConfig(**TINY, **options, d_vocab=len(tokenizer) + 1), seed=0))
    topk = StoryTransformer(ModelConfig(**TINY, **options, attention="topk", attention_k=k, d_vocab=len(tokenizer) + 1))
    topk.load_state_dict(dense.state_dict())
    ids = torch.randint(0, len(tokenizer), (3, 12))
    with torch.no_grad():
        torch.testing.assert_close(topk.eval()(ids), dense(ids), atol=1e-5, rtol=1e-5)


def test_topk_attention_uses_only_the_k_largest_scores_per_query(tokenizer):
    """The gather path equals dense attention whose scores outside each query's top k are set to −inf."""
    from storylab.transformer.sparse_attention import topk_attention

    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 4, generator=generator) for _ in range(3))
    scores = (q @ k.transpose(-2, -1)) / 2.0
    scores = scores.masked_fill(torch.ones(9, 9, dtype=torch.bool).triu(1), float("-inf"))
    threshold = scores.topk(3, dim=-1).values[..., -1:]
    expected = scores.masked_fill(scores < threshold, float("-inf")).softmax(-1) @ v
    torch.testing.assert_close(topk_attention(q, k, v, 3, causal=True), expected)


# --- mixture of experts ----------------------------------------------------------------------------

def test_one_expert_is_exactly_the_dense_mlp(tokenizer):
    dense = perturbed(StoryTransformer(config(tokenizer), seed=0))
    moe = StoryTransformer(config(tokenizer, mlp="moe", n_experts=1))
    weights = {re.sub(r"\.mlp\.", ".mlp.experts.0.", name): value for name, value in dense.state_dict().items()}
    missing, unexpected = moe.load_state_dict(weights, strict=False)
    assert all(name.endswith("mlp.router.weight") for name in missing) and not unexpected
    ids = torch.randint(0, len(tokenizer), (3, 12))
    with torch.no_grad():
        assert torch.equal(moe.eval()(ids), dense(ids))


def test_load_balancing_loss_has_switchs_known_values():
    n_experts, tokens = 4, 64
    uniform = torch.full((tokens, n_experts), 1 / n_experts)
    anywhere = torch.randint(0, n_experts, (tokens, 1))
    assert float(load_balancing_loss(uniform, anywhere, n_experts)) == pytest.approx(1.0)  # uniform router: 1
    skewed = torch.softmax(torch.randn(tokens, n_experts), -1)
    balanced = torch.arange(tokens).remainder(n_experts)[:, None]
    assert float(load_balancing_loss(skewed, balanced, n_experts)) == pytest.approx(1.0)  # uniform load: 1
    collapsed = torch.zeros(tokens, n_experts).index_fill_(1, torch.tensor([0]), 1.0)
    assert float(load_balancing_loss(collapsed, torch.zeros(tokens, 1, dtype=torch.long), n_experts)) == pytest.approx(4.0)


def test_equal_active_moe_matches_the_dense_models_active_parameters(tokenizer):
    dense = config(tokenizer, d_mlp=None)
    assert active_params(dense) == StoryTransformer(dense).n_params
    for per_token in (1, 2):
        moe = equal_active_moe(dense, n_experts=4, experts_per_token=per_token)
        assert (moe.mlp, moe.n_experts, moe.experts_per_token) == ("moe", 4, per_token)
        assert abs(active_params(moe) - active_params(dense)) < per_token * (2 * dense.d_model + 1) * dense.n_layers
        idle = (4 - per_token) * (2 * 16 * moe.d_mlp + moe.d_mlp + 16) * dense.n_layers  # experts a token skips
        assert active_params(moe) == StoryTransformer(moe).n_params - idle
    with pytest.raises(ValueError, match="^config"):
        equal_active_moe(moe, 2)


def test_moe_training_adds_the_aux_loss_and_logs_the_load_per_expert(tmp_path, tokenizer, streams):
    result = train(config(tokenizer, "moe"), quick(aux_loss_weight=0.5, max_steps=3), *streams, tmp_path,
                   tokenizer=tokenizer, progress=False)
    assert {"aux_loss", "expert_load"} <= set(result.log.columns)
    for loads in result.log["expert_load"]:
        assert len(loads) == 2 and all(len(layer) == 3 and sum(layer) == pytest.approx(1.0, abs=1e-5) for layer in loads)
    assert result.log["aux_loss"].between(0.0, 3.0).all()  # n_experts * sum f P lies in [0, n_experts]
    unbalanced = train(config(tokenizer, "moe"), quick(aux_loss_weight=0.0, max_steps=3), *streams, tmp_path / "b",
                       tokenizer=tokenizer, progress=False)
    assert not np.allclose(unbalanced.log["train_loss"], result.log["train_loss"])  # the weight reaches the gradient


# --- restricted output ----------------------------------------------------------------------------

def test_a_restriction_to_all_tokens_is_exactly_the_full_loss():
    logits = torch.randn(3, 7, 11)
    targets = torch.randint(0, 11, (3, 7))
    full = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert torch.equal(restricted_cross_entropy(logits, targets, torch.ones(3, 7, 11, dtype=torch.bool)), full)
    assert torch.equal(restricted_cross_entropy(logits, targets, None), full)


def test_the_restricted_loss_is_the_softmax_over_the_valid_set_only():
    logits = torch.tensor([[[0.0, math.log(3.0), 5.0, math.log(6.0)]]])
    allowed = torch.tensor([[[True, True, False, True]]])
    loss = restricted_cross_entropy(logits, torch.tensor([[1]]), allowed)
    assert float(loss) == pytest.approx(-math.log(3 / 10))
    with pytest.raises(ValueError, match="^output_rule: 1 target token"):
        restricted_cross_entropy(logits, torch.tensor([[2]]), allowed)


def test_the_restricted_score_reads_the_windows_of_the_full_one(tokenizer, streams):
    model = StoryTransformer(ModelConfig(**TINY, d_vocab=len(tokenizer)), seed=1).eval()
    val = streams[1][:40]  # > n_ctx: sliding windows that overlap
    everything = lambda ids: torch.ones(*ids.shape, len(tokenizer), dtype=torch.bool)  # noqa: E731
    full = evaluate(model, val, eot_id=tokenizer.eos_token_id)
    assert restricted_nats(model, val, everything, eot_id=tokenizer.eos_token_id) == pytest.approx(full, rel=1e-12)
    rule = addition_rule(tokenizer)
    restricted, n = restricted_nats(model, val, rule, eot_id=tokenizer.eos_token_id, batch_size=3)
    with_eot = np.concatenate([[tokenizer.eos_token_id], val]).astype(np.int64)
    per_token_full, = window_nats(model, [with_eot], 12, 6)
    per_token_restricted, = window_nats(model, [with_eot], 12, 6, allowed=rule)
    assert n == full[1] and restricted == pytest.approx(per_token_restricted.sum())
    assert (per_token_restricted <= per_token_full + 1e-12).all() and restricted < full[0]


def test_the_addition_rule_allows_digits_space_and_semicolon_from_the_equals_sign_on(tokenizer):
    text = "12 + 30 = 42;7 + 8 = 15;"
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    allowed = addition_rule(tokenizer)(ids)[0]
    answer_tokens = {tokenizer.decode([i]) for i in torch.nonzero(allowed[8]).flatten().tolist()}
    assert answer_tokens == set("0123456789 ;")
    restricted = [i for i in range(len(text)) if not allowed[i].all()]
    assert [text[i] for i in restricted] == list("= 42") + list("= 15")  # the positions predicting each answer


def test_restricted_training_scores_both_losses_and_samples_only_valid_tokens(tmp_path, tokenizer, streams):
    result = train(config(tokenizer), quick(output_rule="addition"), *streams, tmp_path, tokenizer=tokenizer,
                   progress=False)
    last = result.eval_log.iloc[-1]
    # the same tokens in the same windows (scoring.evaluate), a smaller softmax
    assert last["val_loss_restricted"] < last["val_loss"]
    with torch.no_grad():  # a peaked, untrained-looking distribution that favours invalid tokens
        result.model.head.weight.mul_(30)
    for seed in range(3):
        answer = generate(result.model, tokenizer, "12 + 30 =", max_new_tokens=6, temperature=2.0, seed=seed,
                          output_rule="addition", stop=";")
        assert set(answer) <= set("0123456789 ;"), answer
    table = addition_predictions(result.model, tokenizer, ["12 + 30 = 42"], output_rule="addition")
    assert set(table["predicted"][0]) <= set("0123456789 ;")


def test_a_users_rule_is_selected_by_name_and_a_rule_that_misfits_the_data_fails_before_training(
        tmp_path, tokenizer, streams):
    def never_semicolon(tok):
        semicolon = tok.convert_tokens_to_ids(";")

        def rule(ids):
            allowed = torch.ones(*ids.shape, len(tok), dtype=torch.bool)
            allowed[..., semicolon] = False
            return allowed
        return rule

    with pytest.raises(ValueError, match=r"^output_rule: unknown rule 'never_semicolon'; expected one of \['addition'"):
        train(config(tokenizer), quick(output_rule="never_semicolon"), *streams, tmp_path / "run",
              tokenizer=tokenizer, progress=False)
    register_output_rule("never_semicolon", never_semicolon)
    with pytest.raises(ValueError, match="^output_rule: .* outside the rule's valid set"):
        train(config(tokenizer), quick(output_rule="never_semicolon"), *streams, tmp_path / "run",
              tokenizer=tokenizer, progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="^output_rule: restricts next-token"):
        train(config(tokenizer, "masked", mask_id=None), quick(output_rule="addition"), *streams, tmp_path / "run",
              tokenizer=tokenizer, progress=False)


# --- masked LM -----------------------------------------------------------------------------------

def test_the_mask_token_is_appended_without_changing_any_id(tokenizer):
    masked = with_mask_token(tokenizer)
    assert tokenizer.mask_token is None and len(masked) == len(tokenizer) + 1
    assert masked.mask_token_id == len(tokenizer)
    assert {k: v for k, v in masked.get_vocab().items() if k != "<mask>"} == tokenizer.get_vocab()
    text = "12 + 30 = <mask>;"
    assert masked(text, add_special_tokens=False)["input_ids"].count(masked.mask_token_id) == 1
    assert with_mask_token(masked) is masked


def test_masking_is_bert_80_10_10_of_15_percent_of_positions():
    windows = torch.randint(0, 50, (400, 100))
    inputs, targets = mask_windows(windows, mask_id=50, vocab_size=51, mask_rate=0.15, rng=np.random.default_rng(0))
    chosen = targets != IGNORED
    assert (chosen.sum(1) == 15).all()
    assert torch.equal(targets[chosen], windows[chosen]) and torch.equal(inputs[~chosen], windows[~chosen])
    masked = (inputs[chosen] == 50).float().mean()
    kept = (inputs[chosen] == windows[chosen]).float().mean()  # 10% kept, plus random draws of the same token
    assert masked == pytest.approx(0.8, abs=0.02) and kept == pytest.approx(0.1 + 0.1 / 50, abs=0.02)
    assert inputs.max() <= 50


def test_a_masked_model_sees_both_sides_and_a_causal_one_only_the_past(tokenizer):
    ids = torch.randint(0, len(tokenizer), (1, 12), generator=torch.Generator().manual_seed(0))
    later = ids.clone()  # every token after the first changed: top-k attention keeps some of them for the first
    later[0, 1:] = (later[0, 1:] + 1) % len(tokenizer)
    for name, changes_first in (("dense", False), ("masked", True), ("masked topk moe", True)):
        model = perturbed(StoryTransformer(config(tokenizer, name)))
        with torch.no_grad():
            assert (not torch.allclose(model(ids)[0, 0], model(later)[0, 0])) == changes_first, name


def test_masked_lm_trains_through_train_and_resumes_to_the_same_weights(tmp_path, tokenizer, streams):
    plain = config(tokenizer, "masked", mask_id=None, d_vocab=None)
    unbroken = train(plain, quick(), *streams, tmp_path / "a", tokenizer=tokenizer, progress=False)
    train(plain, quick(max_steps=3), *streams, tmp_path / "b", tokenizer=tokenizer, progress=False)
    resumed = train(plain, quick(), *streams, tmp_path / "b", tokenizer=tokenizer, progress=False)
    for name, value in unbroken.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert unbroken.model_config.mask_id == len(tokenizer) == unbroken.model_config.d_vocab - 1
    assert load_tokenizer(tmp_path / "a").mask_token_id == len(tokenizer)  # the run keeps its <mask>
    assert unbroken.val_loss < math.log(len(tokenizer))  # nats per masked token, better than uniform
    assert unbroken.val_stride is None  # a masked LM scores whole windows: no sliding window to record
    with pytest.raises(ValueError, match="^val_bits_per_char"):
        unbroken.val_bits_per_char(100)
    with pytest.raises(ValueError, match=r"^d_vocab: a masked LM's vocabulary includes the <mask>"):
        train(config(tokenizer, "masked", mask_id=None, d_vocab=len(tokenizer)), quick(), *streams, tmp_path / "c",
              tokenizer=tokenizer, progress=False)


class PreviousTokenFiller(torch.nn.Module):
    """A scripted masked LM: at each position, p(next id) ∝ weights[previous id] (for exact expectations)."""

    def __init__(self, vocab, table):
        super().__init__()
        self.config = ModelConfig(n_layers=1, d_model=4, n_heads=1, n_ctx=64, d_vocab=vocab, objective="masked")
        self.table = torch.nn.Parameter(table.log())

    def forward(self, ids):
        shifted = torch.cat([ids[:, :1], ids[:, :-1]], dim=1)
        return self.table[shifted]


def test_fill_mask_gives_the_vocabulary_or_candidates_chained_over_their_tokens(tokenizer):
    masked = with_mask_token(tokenizer)
    vocab = len(masked)
    table = torch.ones(vocab, vocab)
    one, two, four = (masked.convert_tokens_to_ids(c) for c in "124")
    table[masked.convert_tokens_to_ids(" "), one] = 3.0  # after a space, '1' is 3x as likely
    table[one, two] = 50.0  # after '1', '2' is 50x as likely
    table[:, masked.mask_token_id] = 7.0  # the mask token is never an answer
    model = PreviousTokenFiller(vocab, table)
    probs = fill_mask(model, masked, "7 + <mask> = 19;")
    assert probs.shape == (vocab,) and float(probs[masked.mask_token_id]) == 0.0
    assert float(probs[one]) == pytest.approx(3 / (vocab - 1 + 2))
    # "12": p('1' | ' ') p('2' | '1') = 3/(V+2) * 50/(V+49);  "4": p('4' | ' ') = 1/(V+2)  (V without <mask>)
    distribution = fill_mask(model, masked, "7 + <mask> = 19;", ["4", "12"])
    v = vocab - 1
    ratio = (3 / (v + 2) * 50 / (v + 49)) / (1 / (v + 2))
    assert list(distribution) == ["12", "4"]
    assert distribution["12"] == pytest.approx(ratio / (1 + ratio))
    assert list(fill_mask(model, masked, "7 + <mask> = 19;", [four, "12"])) == ["12", four]  # a token id is a candidate too
    # candidates and text go through encode_prompt: what the tokenizer does not know is said, not silently <unk>
    with pytest.warns(UnknownTokenWarning, match="^candidates: the tokenizer has no token for 'Z'"):
        fill_mask(model, masked, "7 + <mask> = 19;", ["4", "1Z"])
    with pytest.warns(UnknownTokenWarning, match="^text_with_mask: the tokenizer has no token for 'Q'"):
        fill_mask(model, masked, "Q + <mask> = 19;")
    with pytest.raises(ValueError, match="^candidates: a candidate is listed twice"):
        fill_mask(model, masked, "7 + <mask> = 19;", ["4", "4"])
    with pytest.raises(ValueError, match="^text_with_mask"):
        fill_mask(model, masked, "no mask here")
    with pytest.raises(ValueError, match="^tokenizer"):
        fill_mask(model, tokenizer, "7 + <mask>")
    with pytest.raises(ValueError, match="^model: fill_mask needs a masked LM"):
        fill_mask(to_bridge(StoryTransformer(config(tokenizer, d_vocab=vocab)), masked), masked, "7 + <mask>")


# --- TransformerLens bridges --------------------------------------------------------------------------

STANDARD_HOOKS = ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_pattern",
                  "blocks.0.attn.hook_z", "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid", "blocks.0.mlp.hook_post",
                  "blocks.1.hook_resid_post", "ln_final.hook_normalized"]


@pytest.mark.parametrize("name", list(OPTIONS))
def test_every_option_opens_in_transformer_lens_with_the_standard_hooks_and_the_same_logits(tokenizer, name):
    model = perturbed(StoryTransformer(config(tokenizer, name)))
    bridge = to_bridge(model, with_mask_token(tokenizer) if "masked" in name else tokenizer)
    ids = torch.randint(0, len(tokenizer), (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(bridge(ids), model(ids), atol=1e-5, rtol=1e-5)
        _, cache = bridge.run_with_cache(ids)
    for hook in STANDARD_HOOKS:
        assert hook in cache, hook
    pattern = cache["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 2, 12))
    if model.config.attention == "topk":
        kept = min(model.config.attention_k, 12)
        visible = torch.arange(1, 13).clamp_max(kept) if model.config.objective == "causal" else torch.full((12,), kept)
        assert torch.equal((pattern > 0).sum(-1), visible.expand(2, 2, 12))
    if model.config.mlp == "moe":
        weights = cache["blocks.0.mlp.hook_expert_weights"]
        assert weights.shape == (2 * 12, model.config.n_experts)
        assert torch.equal((weights > 0).sum(-1), torch.full((24,), model.config.experts_per_token))


def test_a_trained_run_of_each_option_loads_back_as_model_and_bridge(tmp_path, tokenizer, streams):
    from storylab.transformer import load_run

    result = train(config(tokenizer, "masked topk moe", mask_id=None, d_vocab=None), quick(max_steps=2), *streams,
                   tmp_path, tokenizer=tokenizer, progress=False)
    model, loaded_tokenizer, model_config = load_model(tmp_path)
    assert model_config == result.model_config
    bridge, _, _ = load_run(tmp_path)
    ids = torch.randint(0, len(loaded_tokenizer), (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(bridge(ids), result.model(ids), atol=1e-5, rtol=1e-5)
    assert set(fill_mask(bridge, loaded_tokenizer, "3<mask> = 36;", ["4", "5"])) == {"4", "5"}


def test_the_routing_table_and_pattern_sparsity_read_the_bridge(tokenizer):
    model = perturbed(StoryTransformer(config(tokenizer, "moe", attention="topk", attention_k=3)))
    bridge = to_bridge(model, tokenizer)
    sequences = interp.story_sequences(tokenizer, ["12 + 30 = 42;", "7 + 8 = 15;"], 12)
    assignments = interp.expert_assignments(bridge, sequences)
    assert len(assignments) == sum(len(s) for s in sequences) * 2 * 2  # positions x layers x experts_per_token
    table = interp.expert_token_table(assignments, tokenizer, layer=1, n_experts=3)
    assert list(table.columns) == ["count", "expert 0", "expert 1", "expert 2"]
    np.testing.assert_allclose(table.drop(columns="count").sum(axis=1), 2.0)
    assert table["count"].sum() == sum(len(s) for s in sequences)
    # the training module's router picks the same experts
    with torch.no_grad():
        resid = bridge.run_with_cache(torch.as_tensor(sequences[0])[None])[1]["blocks.1.mlp.hook_in"][0]
        _, _, indices = model.layers[1].mlp.router(resid)
    first = assignments[(assignments["sequence"] == 0) & (assignments["layer"] == 1)]
    assert sorted(map(tuple, first[["position", "expert"]].to_numpy())) == sorted(
        (p, e) for p, row in enumerate(indices.tolist()) for e in row)
    sparsity = interp.pattern_sparsity(interp.attention_patterns(bridge, torch.as_tensor(sequences[1])))
    n = len(sequences[1])
    assert sparsity["nonzero_keys"].tolist() == pytest.approx([np.mean(np.minimum(np.arange(1, n + 1), 3))] * 4)
    with pytest.raises(ValueError, match="^bridge: not a mixture-of-experts"):
        interp.routing_weights(to_bridge(StoryTransformer(config(tokenizer)), tokenizer), torch.tensor([1, 2]))
