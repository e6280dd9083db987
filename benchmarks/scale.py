"""Full-size data on one machine: the time and peak memory of every stage of the pipeline.

    .venv/bin/python benchmarks/scale.py                       # 1,000,000 stories (~0.9 GB of text): 20-40 minutes
    .venv/bin/python benchmarks/scale.py --stories 20000       # the same pipeline, small: about a minute
    .venv/bin/python benchmarks/scale.py --stories 10000 20000 --start fork --json   # tests/test_scale_memory.py

Stages, each in a process of its own, so that its peak RSS is its own:

- generate   N stories of the embedded generator (`storylab.corpora.stories.generate_stories`)
             into one .txt (`<|endoftext|>` between stories), by --workers processes,
             each part of --part-stories stories from its own seeded stream
             (`SeedSequence(seed).spawn`: part i is the same whatever N, so 10,000
             stories are the first 10,000 of 20,000);
- corpus     `load_corpus({"source": "file", "path": ..., "validation": ...})`: the file
             streamed into the memory-mapped Arrow cache;
- tokenizer  bpe:1,024 trained on --tokenizer-sample evenly spaced training stories;
- encode     the corpus into memory-mapped uint16 ids, offsets and streams (`encode_corpus`);
             its MB/s is the encoder's own (text bytes over the time of the encoding
             loop of both splits; the stories are ASCII, so characters are bytes);
- em         one EM iteration of a K=--states HMM on the training stories cut to 500 tokens
             (notebook 02's default), read from the memory map a batch at a time;
- train      --steps steps of a small transformer (2 layers, d_model 128, n_ctx 128,
             batch 32) on the memory-mapped training stream, one final evaluation on
             the first --val-tokens validation tokens.

Per stage: elapsed_s (the whole process: start-up, imports and the work), peak_rss_mb
(the process's high-water mark, and its children's for generate), peak_growth_mb (the
high-water mark reached by the work over the RSS just before it, read from Linux /proc
after resetting the mark) and anonymous_growth_mb (the same for anonymous memory alone,
sampled every 2 ms: what tests/test_scale_memory.py compares across sizes). RSS also
counts the pages of memory-mapped files a stage reads (the Arrow text, the uint16 tokens),
which the kernel drops when it needs the room; anonymous memory is what the code holds.
With --start fork the stages are forked from this process after it imported the
libraries (fast: for the test), so their peak_rss_mb includes what this process holds;
the default, fresh, starts a new interpreter per stage (what a user's run costs).

Goals (issue 14) on the 2-core machine: every stage under 3 GB peak RSS; encoding at
least 5 MB of text per second. Torch uses --threads threads (1: the machine is shared);
the tokenizer's Rust encoder uses every core. Everything is written under --work (the
text file, and the cache and runs in <work>/outputs/); results go to --results, by
default benchmarks/results/scale-<N>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STAGES = ("generate", "corpus", "tokenizer", "encode", "em", "train")
EOT_SEPARATOR = "\n<|endoftext|>\n"
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, nargs="+", default=[1_000_000], help="corpus sizes, each a whole pipeline")
    parser.add_argument("--work", type=Path, default=None, help="folder for the text and outputs (default: a temporary one, removed)")
    parser.add_argument("--start", choices=("fresh", "fork"), default="fresh")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="story-generating processes")
    parser.add_argument("--part-stories", type=int, default=5000, help="stories per generated part (one seeded stream each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation", type=float, default=0.01, help="share of the stories held out")
    parser.add_argument("--tokenizer-sample", type=int, default=20000, help="training stories the BPE learns from")
    parser.add_argument("--states", type=int, default=100)
    parser.add_argument("--em-memory-mb", type=float, default=None, help="E-step batch budget (default: the library's, 1 GB on CPU)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--val-tokens", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    parser.add_argument("--results", type=Path, default=None, help="where to write them (default: benchmarks/results/scale-<N>.json)")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # internal: run one stage (fresh start)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- measuring a process
def status_mb(key: str) -> float | None:
    """A /proc/self/status figure (VmRSS, VmHWM) in MiB, None off Linux."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux); False where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def ru_maxrss_mb(who) -> float:
    peak = resource.getrusage(who).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class AnonymousPeak:
    """The largest anonymous RSS (RssAnon: memory the process allocated, not pages of files it mapped)
    seen by a thread reading /proc every `interval_s`, while the `with` block runs.

    The kernel keeps no high-water mark of anonymous memory alone, hence the sampling: a
    sample every 2 ms (every 5 ms, Python's switch interval, while the stage runs Python
    code) misses only what is allocated and freed within a few ms; memory a stage holds
    while it works is seen.
    """

    def __init__(self, interval_s: float = 0.002):
        self.interval_s, self.peak_mb, self._stop = interval_s, status_mb("RssAnon"), threading.Event()

    def __enter__(self) -> "AnonymousPeak":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, status_mb("RssAnon"))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, status_mb("RssAnon"))


def measured(stage: str, settings: dict) -> dict:
    """Run one stage in this process: its own figures plus its time and memory (see the module docstring)."""
    import_all(settings["threads"])
    import_peak_mb = status_mb("VmHWM") or ru_maxrss_mb(resource.RUSAGE_SELF)
    before_mb, anon_before_mb = status_mb("VmRSS"), status_mb("RssAnon")
    can_reset = reset_peak()
    started = time.perf_counter()
    if anon_before_mb is None:  # not Linux
        figures, anon_peak_mb = STAGE_FUNCTIONS[stage](settings), None
    else:
        with AnonymousPeak() as anon:
            figures = STAGE_FUNCTIONS[stage](settings)
        anon_peak_mb = anon.peak_mb
    work_s = time.perf_counter() - started
    peak_mb = status_mb("VmHWM") or ru_maxrss_mb(resource.RUSAGE_SELF)
    return {"stage": stage, "work_s": work_s, "peak_rss_mb": max(import_peak_mb, peak_mb, ru_maxrss_mb(resource.RUSAGE_CHILDREN)),
            "peak_growth_mb": peak_mb - before_mb if can_reset and before_mb is not None else None,
            "anonymous_growth_mb": None if anon_peak_mb is None else anon_peak_mb - anon_before_mb, **figures}


def import_all(threads: int) -> None:
    """The libraries every stage needs, imported before the baseline is read (their memory is not the stage's work)."""
    import torch

    import storylab.hmm  # noqa: F401
    import storylab.tokenizers  # noqa: F401
    import storylab.transformer  # noqa: F401

    torch.set_num_threads(threads)


def run_stage(stage: str, settings: dict, start: str) -> dict:
    """One stage in a new process: a fresh interpreter, or a fork of this one."""
    started = time.perf_counter()
    if start == "fresh":
        done = subprocess.run([sys.executable, __file__, "--stage", stage, "--settings", json.dumps(settings)],
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"stage {stage} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
    else:
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        process = context.Process(target=_forked_stage, args=(stage, settings, queue))
        process.start()
        result = queue.get()
        process.join()
        if "error" in result:
            raise SystemExit(f"stage {stage} failed:\n{result['error']}")
    return {**result, "elapsed_s": time.perf_counter() - started}


def _forked_stage(stage: str, settings: dict, queue) -> None:
    try:
        queue.put(measured(stage, settings))
    except BaseException:  # the driver must hear of it, not wait forever
        import traceback

        queue.put({"error": traceback.format_exc()})


# ----------------------------------------------------------------------------- the stages
def corpus_spec(settings: dict) -> dict:
    return {"source": "file", "path": settings["text_path"], "validation": settings["validation"]}


TOKENIZER = {"kind": "bpe", "vocab_size": 1024}


def tokenizer_spec(settings: dict) -> dict:
    return {**TOKENIZER, "sample_stories": settings["tokenizer_sample"]}


def generate(settings: dict) -> dict:
    """The stories into one text file: parts generated in parallel, then joined in order."""
    import numpy as np

    n_stories, part_stories = settings["n_stories"], settings["part_stories"]
    n_parts = -(-n_stories // part_stories)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(settings["seed"]).spawn(n_parts)]
    parts_dir = Path(settings["text_path"]).with_suffix(".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(str(parts_dir / f"{i:06d}.txt"), min(part_stories, n_stories - i * part_stories), seeds[i]) for i in range(n_parts)]
    with multiprocessing.get_context("fork").Pool(settings["workers"]) as pool:
        n_bytes = sum(pool.imap(_write_part, jobs))
    with open(settings["text_path"], "wb") as out:
        for i, (path, _, _) in enumerate(jobs):
            if i:
                out.write(EOT_SEPARATOR.encode())
            with open(path, "rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
    shutil.rmtree(parts_dir)
    return {"stories": n_stories, "text_mb": Path(settings["text_path"]).stat().st_size / 1e6, "story_mb": n_bytes / 1e6}


def _write_part(job) -> int:
    from storylab.corpora.stories import generate_stories

    path, n_stories, seed = job
    texts, _ = generate_stories(n_stories, seed)
    data = EOT_SEPARATOR.join(texts).encode()
    Path(path).write_bytes(data)
    return sum(len(t.encode()) for t in texts)


def corpus(settings: dict) -> dict:
    from storylab.corpora import load_corpus

    loaded = load_corpus(corpus_spec(settings))
    return {"train_stories": loaded.meta["n_stories"]["train"], "validation_stories": loaded.meta["n_stories"]["validation"]}


def tokenizer(settings: dict) -> dict:
    from storylab.tokenizers import get_tokenizer

    return {"vocab_size": len(get_tokenizer(tokenizer_spec(settings), corpus_spec(settings)))}


def encode(settings: dict) -> dict:
    from storylab.tokenizers import encode_corpus

    cpu_started = time.process_time()  # every thread of this process: the tokenizer's Rust threads too
    meta = encode_corpus(corpus_spec(settings), tokenizer_spec(settings), progress=False).meta
    cpu_s = time.process_time() - cpu_started
    splits = [meta["train"], meta["validation"]]
    encode_s, text_mb = sum(s["encode_elapsed_s"] for s in splits), sum(s["n_chars"] for s in splits) / 1e6
    return {"train_tokens": meta["train"]["n_tokens"], "encode_s": encode_s, "encode_mb_per_s": text_mb / encode_s,
            "encode_mb_per_cpu_s": text_mb / cpu_s}


def em(settings: dict) -> dict:
    from storylab import hmm_engine
    from storylab.devices import resolve_device
    from storylab.experiment import load_experiment
    from storylab.hmm import CategoricalHMM

    exp = load_experiment(corpus_spec(settings), tokenizer_spec(settings))
    hmm = CategoricalHMM(settings["states"], exp.vocab_size, seed=0, eot_id=exp.eot_id)
    budget = settings["em_memory_mb"]
    batch_tokens = None if budget is None else hmm_engine.default_batch_tokens(hmm.n_states, resolve_device("auto"), budget)
    (row,) = hmm.fit(exp.train.chunks(max_len=500, mode="split"), n_iter=1, batch_tokens=batch_tokens, progress=False)
    return {"em_tokens": hmm.train_tokens, "em_s": row["elapsed_s"],
            "em_tokens_per_s": row["tokens_per_s"], "train_nats_per_token": row["train_nats_per_token"]}


def train_steps(settings: dict) -> dict:
    from storylab.experiment import load_experiment
    from storylab.transformer import ModelConfig, TrainConfig, train

    exp = load_experiment(corpus_spec(settings), tokenizer_spec(settings))
    steps = settings["steps"]
    result = train(ModelConfig(n_layers=2, d_model=128, n_heads=4, d_mlp=512, n_ctx=128),
                   TrainConfig(batch_size=32, max_steps=steps, warmup_steps=min(20, steps), decay_steps=steps, max_minutes=None,
                               eval_every=steps, eval_tokens=settings["val_tokens"], save_every=steps),
                   exp.train.stream(), exp.validation.stream()[: settings["val_tokens"]],
                   Path(settings["work"]) / "outputs" / "train_run", tokenizer=exp.tokenizer, progress=False, resume=False)
    return {"steps": steps, "train_tokens_per_s": result.train_tokens_per_s, "val_nats_per_token": result.val_total_nats / result.val_n_tokens}


STAGE_FUNCTIONS = {"generate": generate, "corpus": corpus, "tokenizer": tokenizer, "encode": encode, "em": em, "train": train_steps}


# ----------------------------------------------------------------------------- the driver
def pipeline(n_stories: int, args: argparse.Namespace, work: Path) -> list[dict]:
    folder = work / f"stories-{n_stories}"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["STORYLAB_OUTPUTS"] = str(folder / "outputs")  # the stages' caches and runs, inherited by every stage
    settings = {"n_stories": n_stories, "text_path": str(folder / "stories.txt"), "work": str(folder), "workers": args.workers,
                "part_stories": args.part_stories, "seed": args.seed, "validation": args.validation,
                "tokenizer_sample": args.tokenizer_sample, "states": args.states, "em_memory_mb": args.em_memory_mb,
                "steps": args.steps, "val_tokens": args.val_tokens, "threads": args.threads}
    results = []
    for stage in STAGES:
        results.append(run_stage(stage, settings, args.start))
        print(row_text(n_stories, results[-1]), flush=True)
    return results


def row_text(n_stories: int, result: dict) -> str:
    growth, anonymous = result["peak_growth_mb"], result["anonymous_growth_mb"]
    extras = {"generate": f"{result.get('text_mb', 0):,.0f} MB of text",
              "corpus": f"{result.get('train_stories', 0):,} training stories",
              "tokenizer": f"vocabulary {result.get('vocab_size')}",
              "encode": (f"{result.get('encode_mb_per_s', 0):.2f} MB/s of text, {result.get('encode_mb_per_cpu_s', 0):.2f} MB per "
                         f"CPU-second ({result.get('train_tokens', 0):,} training tokens)"),
              "em": f"{result.get('em_tokens_per_s', 0):,.0f} tokens/s ({result.get('em_tokens', 0):,} tokens)",
              "train": f"{result.get('train_tokens_per_s', 0):,.0f} tokens/s"}[result["stage"]]
    return (f"{n_stories:>9,}  {result['stage']:<9}  {result['elapsed_s']:8.1f} s  {result['peak_rss_mb']:8.0f} MB  "
            f"{'' if growth is None else f'{growth:+8.1f} MB'}  {'' if anonymous is None else f'{anonymous:+8.1f} MB'}  {extras}")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.stage:  # one stage of a fresh start: its figures as the last line
        print(json.dumps(measured(args.stage, json.loads(args.settings))))
        return
    if args.start == "fork":
        import_all(args.threads)  # once, here: every forked stage starts with the libraries loaded
    work = args.work or Path(tempfile.mkdtemp(prefix="storylab-scale-"))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"stages in {args.start} processes; load average before: {load}; work folder {work}")
    print(f"{'stories':>9}  {'stage':<9}  {'elapsed':>10}  {'peak RSS':>11}  {'growth':>11}  {'anon growth':>11}")
    try:
        results = {n: pipeline(n, args, work) for n in args.stories}
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report = {"stories": args.stories, "start": args.start, "load_average_before": load, "cpus": os.cpu_count(),
              "results": {str(n): r for n, r in results.items()}}
    path = args.results or RESULTS / f"scale-{'-'.join(map(str, args.stories))}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
