"""Small decoder-only transformers: configure, train, score, sample, export, and open in TransformerLens.

Modules, each importing only the ones listed before it:
- `config`: `ModelConfig` (shape) and `TrainConfig` (recipe), checked on creation; `configs_from_params`
- `model`: `StoryTransformer`, the plain PyTorch module that is trained (fused attention, no hooks)
- `data`: random training windows
- `module_lm`: what the neural language models share (6·N·D, the end-of-text context, `eval_mode`)
- `scoring`: sliding-window scoring of sequences, optionally restricted; `evaluate` (a flat stream)
- `language_model`: `TransformerLM`, a module as a `storylab.lm.LanguageModel`
- `rnn`: the recurrent family (`architecture="lstm"` / `"gru"`): `StoryRNN` and `RNNLM`
- `architectures`: what `ModelConfig.architecture` names: `build_model`, `wrap_language_model`
- `schedule`: warm-up + cosine learning rate
- `checkpoint`: atomic safetensors checkpoints with optimizer and RNG state
- `training_logs`: the JSONL logs and their TensorBoard names
- `data_parallel`: training across processes (DistributedDataParallel, rank 0 writes)
- `training`: `train(...) -> TrainResult`, resumable, TensorBoard through a `Tracker`, across processes
- `runs`: `load_model` / `load_lm` / `load_result` from a run folder
- `distributed_train`: `train_with_torchrun` (several processes from a notebook) and the torchrun entry point
- `bridge`: `to_bridge` / `load_run`, a TransformerLens 4 `TransformerBridge` over the same weights
- `export`: `export_hf`, a Hugging Face `save_pretrained` folder (GPT-2)
- `generation`: text-level `generate`, `next_token_table`, `addition_accuracy`
- architecture options (`options`): `sparse_attention` (top-k attention), `moe` (mixture of
  experts, `equal_active_moe`), `masked` (masked LM, `fill_mask`), `output_rules`
  (restricted-output loss and sampling), `bridge_options` (how each opens in TransformerLens)
"""

from storylab.lazy_exports import lazy_exports

# name → the module that defines it. Each is imported on first use: a caller that needs only
# `ModelConfig` (the runner's parameter checks) pays neither for TransformerLens nor for the
# tokenizers and corpora, and `python -m storylab.transformer.distributed_train` (each torchrun
# process) does not find that module already imported by its own package.
_EXPORTS = {
    "bridge": ["load_run", "to_bridge"],
    "config": ["ModelConfig", "TrainConfig", "configs_from_params"],
    "distributed_train": ["train_with_torchrun"],
    "export": ["export_hf"],
    "generation": ["TokenTable", "addition_accuracy", "addition_predictions", "generate", "next_token_table"],
    "language_model": ["TransformerLM"],
    "masked": ["fill_mask", "fill_mask_table", "with_mask_token"],
    "model": ["StoryTransformer"],
    "moe": ["active_params", "equal_active_moe"],
    "options": ["architecture_columns", "architecture_label"],
    "output_rules": ["make_output_rule", "output_rule_names", "register_output_rule", "restricted_nats"],
    "rnn": ["RNNLM", "StoryRNN"],
    "runs": ["load_lm", "load_model", "load_result"],
    "schedule": ["learning_rate"],
    "scoring": ["evaluate"],
    "training": ["TrainResult", "train"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
