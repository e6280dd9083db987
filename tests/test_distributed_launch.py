"""`train_with_torchrun`: a notebook's one call that trains with 2 torchrun processes (CPU, gloo)."""

import pytest
from test_tracking import read_scalars

from storylab.experiment import load_experiment
from storylab.transformer import ModelConfig, TrainConfig, train, train_with_torchrun
from storylab.transformer.distributed_train import last_error_line

CORPUS = {"source": "stories", "n_stories": 40, "validation": 10}
MODEL = ModelConfig(n_layers=1, d_model=16, n_heads=2, n_ctx=16)
RECIPE = TrainConfig(batch_size=4, max_steps=4, warmup_steps=2, decay_steps=2, eval_every=2, eval_tokens=256,
                     save_every=2)


@pytest.mark.slow  # two torchrun launches of two processes each: ~25 s on 2 busy cores
def test_two_torchrun_processes_return_the_result_of_one_and_fail_with_the_childs_error(tmp_path, capsys):
    experiment = load_experiment(CORPUS, "char")
    single = train(MODEL, RECIPE, experiment.train.stream(), experiment.validation.stream(), tmp_path / "single",
                   tokenizer=experiment.tokenizer, progress=False)
    result = train_with_torchrun(MODEL, RECIPE, CORPUS, "char", None, tmp_path / "two", processes=2, device="cpu",
                                 tracker_options={"folder": str(tmp_path / "tb")}, progress=False)
    assert result.log["step"].tolist() == [1, 2, 3, 4]
    assert result.log["train_loss"].tolist() == pytest.approx(single.log["train_loss"].tolist(), abs=1e-5)
    assert result.val_total_nats == pytest.approx(single.val_total_nats, rel=1e-5)
    assert result.lm.label == single.lm.label and result.eot_id == experiment.eot_id
    events = read_scalars(tmp_path / "tb")  # written live by rank 0 of the child processes
    assert [v for _, v in events["train/loss"]] == pytest.approx(result.log["train_loss"].tolist(), rel=1e-6)

    other_model = ModelConfig(n_layers=2, d_model=16, n_heads=2, n_ctx=16)  # the folder holds another model's run
    with pytest.raises(RuntimeError, match=r"training processes failed \(exit 1\): ValueError: model_config: .* holds a "
                                           r"run of a different model .*torchrun.log\)$"):
        train_with_torchrun(other_model, RECIPE, CORPUS, "char", None, tmp_path / "two", processes=2, device="cpu",
                            progress=False)
    assert "Traceback" in capsys.readouterr().out  # the child's output was streamed, not swallowed


def test_bad_launch_arguments_fail_before_any_process_starts(tmp_path):
    with pytest.raises(ValueError, match="^processes: expected an integer >= 1, got 0$"):
        train_with_torchrun(MODEL, RECIPE, CORPUS, "char", None, tmp_path, processes=0)
    with pytest.raises(ValueError, match="^batch_size: 4 windows do not split evenly over 3 processes"):
        train_with_torchrun(MODEL, RECIPE, CORPUS, "char", None, tmp_path, processes=3)
    with pytest.raises(ValueError, match="^tracker_options: expected a dict of storylab.tracking.Tracker arguments"):
        train_with_torchrun(MODEL, RECIPE, CORPUS, "char", None, tmp_path, processes=2, tracker_options={"log_dir": "x"})
    assert not any(tmp_path.iterdir())


def test_the_childs_error_line_is_found_under_torchruns_summary():
    output = ["[rank1]: Traceback (most recent call last):", "[rank1]:   File \"x.py\", line 1, in <module>",
              "[rank1]: ValueError: rows: expected an integer >= 1, got 0",
              "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ", "=" * 60,
              "storylab.transformer.distributed_train FAILED", "  traceback : To enable traceback see: https://x"]
    assert last_error_line(output) == "ValueError: rows: expected an integer >= 1, got 0"
    assert last_error_line(["just a line", ""]) == "just a line"
