"""Throughput of the pipeline's training and inference paths, against HF-example-style baselines.

    make bench                      # or: .venv/bin/python bench/run.py [--steps 26] [--rss]

Needs the default pipeline's data (`dvc repro` up to tokenize). One run, one machine, the same
model and data for every row: HF example style (padding="max_length", random batches, full-vocabulary
MLM head) against what the stages do (dynamic padding, length-grouped batches, MLM head at masked
positions only, numpy dropout masks; the same path with torch's masks is a row of its own). It also
measures the machine's fp32 GEMM peak and reports the FLOP/s achieved on real (non-pad) tokens as a
share of it, a no-op `dvc repro`, and with --rss the peak RSS of every
stage (re-running each one with `dvc repro --force --single-item` under /usr/bin/time: about as long
as the default run). Writes bench/results.json. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets
import torch
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    default_data_collator,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transfer.core.artifacts import load_dataset_output, read_jsonl  # noqa: E402
from transfer.core.modeling import load_tokenizer, resolve_model, training_arguments  # noqa: E402
from transfer.core.params import load_params  # noqa: E402
from transfer.training.cpu_dropout import configure_dropout  # noqa: E402
from transfer.training.pretraining import MaskedPositionsMLM  # noqa: E402
from transfer.training.trainer import LengthSortedTrainer  # noqa: E402

TARGETS = {"finetune_speedup": 3.0, "share_of_gemm_peak": 0.60, "noop_repro_s": 3.0, "stage_peak_rss_gib": 4.0}


def gemm_peak_flops(size: int = 2048, repeats: int = 10) -> float:
    """Best fp32 matmul FLOP/s over a few square products, on the threads torch uses."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def encoder_flops(config, lengths: list[int], masked_tokens: int = 0, training: bool = True) -> float:
    """Matmul FLOPs of a BERT-style encoder on sequences of these real lengths (Kaplan et al. 2020 counting).

    Per token and layer: 2*(4d^2 + 2*d*d_ff) for the projections and 4*L*d for attention scores and
    mixing; the MLM head adds 2*(d^2 + d*V) per masked token. Training is 3x the forward pass.
    """
    d, d_ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    forward = sum(n * layers * (2 * (4 * d * d + 2 * d * d_ff) + 4 * n * d) for n in lengths)
    forward += masked_tokens * 2 * (d * d + d * config.vocab_size)
    return 3 * forward if training else forward


class BatchMeter:
    """Wraps a collator: counts real and padded tokens of the batches timed (after the warm-up ones)."""

    def __init__(self, collator, warmup: int):
        self.collator, self.warmup, self.calls = collator, warmup, 0
        self.lengths: list[int] = []
        self.padded_tokens = self.masked_tokens = 0

    def __call__(self, features):
        batch = self.collator(features)
        self.calls += 1
        if self.calls > self.warmup:
            self.lengths += batch["attention_mask"].sum(1).tolist()
            self.padded_tokens += batch["input_ids"].numel()
            if "labels" in batch and batch["labels"].dim() == 2:
                self.masked_tokens += int((batch["labels"] != -100).sum())
        return batch


class StepClock(TrainerCallback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def time_training(model, dataset, collator, *, steps: int, warmup: int, batch_size: int, group_by_length: bool,
                  peak: float, config, trainer_class=Trainer) -> dict:
    meter, clock = BatchMeter(collator, warmup), StepClock(warmup)
    with tempfile.TemporaryDirectory() as scratch:
        args = training_arguments(scratch, seed=0, epochs=1, learning_rate=1e-5, batch_size=batch_size,
                                  eval_each_epoch=False, group_by_length=group_by_length, max_steps=steps,
                                  logging_steps=10_000, disable_tqdm=True)
        trainer_class(model=model, args=args, train_dataset=dataset, data_collator=meter, callbacks=[clock]).train()
    seconds = clock.end - clock.start
    real_tokens = sum(meter.lengths)
    flops = encoder_flops(config, meter.lengths, meter.masked_tokens)
    return {"samples_per_s": len(meter.lengths) / seconds, "real_tokens_per_s": real_tokens / seconds,
            "padded_tokens_per_s": meter.padded_tokens / seconds, "pad_share": 1 - real_tokens / meter.padded_tokens,
            "achieved_gflops": flops / seconds / 1e9, "share_of_gemm_peak": flops / seconds / peak,
            "timed_steps": steps - warmup}


def as_pipeline_trains(model, params):
    """The model with the dropout masks the pipeline's training stages give it on this CPU."""
    configure_dropout(model, params, torch.device("cpu"))
    return model


def padded(texts: list[str], tokenizer, max_length: int, labels: list[int] | None = None) -> datasets.Dataset:
    encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length)
    if labels is not None:
        encoded["labels"] = labels
    return datasets.Dataset.from_dict(dict(encoded))


def bench_finetune(params, base: str, tokenizer, steps: int, warmup: int, peak: float) -> dict:
    train = load_dataset_output(ROOT / "data/tokenized/target")["train"]
    texts = [r["text"] for r in read_jsonl(ROOT / "data/augmented/target/train.jsonl")]
    labels = [params.data.labels.index(r["label"]) for r in read_jsonl(ROOT / "data/augmented/target/train.jsonl")]
    batch = params.finetune.batch_size
    pipeline_data = train.remove_columns([c for c in train.column_names if c not in
                                          ("input_ids", "attention_mask", "token_type_ids", "label", "length")])

    def classifier():
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(params.data.labels))

    model = classifier()
    rows = {
        "hf_example": time_training(model, padded(texts, tokenizer, params.tokenize.max_length, labels),
                                    default_data_collator, steps=steps, warmup=warmup, batch_size=batch,
                                    group_by_length=False, peak=peak, config=model.config),
        "hf_group_by_length": time_training(classifier(), pipeline_data, DataCollatorWithPadding(tokenizer),
                                            steps=steps, warmup=warmup, batch_size=batch, group_by_length=True,
                                            peak=peak, config=model.config),
        "pipeline_torch_dropout": time_training(classifier(), pipeline_data, DataCollatorWithPadding(tokenizer),
                                                steps=steps, warmup=warmup, batch_size=batch, group_by_length=True,
                                                peak=peak, config=model.config, trainer_class=LengthSortedTrainer),
        "pipeline": time_training(as_pipeline_trains(classifier(), params), pipeline_data,
                                  DataCollatorWithPadding(tokenizer), steps=steps, warmup=warmup, batch_size=batch,
                                  group_by_length=True, peak=peak, config=model.config,
                                  trainer_class=LengthSortedTrainer),
    }
    rows["speedup_samples_per_s"] = rows["pipeline"]["samples_per_s"] / rows["hf_example"]["samples_per_s"]
    return rows


def bench_pretrain(params, base: str, tokenizer, steps: int, warmup: int, peak: float) -> dict:
    config = params.pretrain_domain
    texts = [r["text"] for split in ("unlabeled", "train")
             for r in read_jsonl(ROOT / f"data/clean/target/{split}.jsonl")]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability, seed=0)
    encoded = tokenizer(texts, truncation=True, max_length=config.max_length, return_special_tokens_mask=True)
    line_by_line = datasets.Dataset.from_dict({**encoded, "length": [len(i) for i in encoded["input_ids"]]})
    # run_mlm.py's group_texts: concatenate everything, cut into max_length blocks (no padding at all).
    pieces = tokenizer(texts, add_special_tokens=False)["input_ids"]
    stream = [token for ids in pieces for token in [*ids, tokenizer.sep_token_id]]
    block = config.max_length - 2
    blocks = [[tokenizer.cls_token_id, *stream[i:i + block], tokenizer.sep_token_id]
              for i in range(0, len(stream) - block + 1, block)]
    packed = datasets.Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks]})

    def mlm():
        torch.manual_seed(0)
        return AutoModelForMaskedLM.from_pretrained(base)

    model = mlm()
    run = dict(steps=steps, warmup=warmup, batch_size=config.batch_size, peak=peak, config=model.config)
    padded_data = padded(texts, tokenizer, config.max_length)
    rows = {
        "hf_example_padded_full_vocab": time_training(model, padded_data, collator, group_by_length=False, **run),
        "pipeline_torch_dropout": time_training(MaskedPositionsMLM(mlm()), line_by_line, collator,
                                                group_by_length=True, trainer_class=LengthSortedTrainer, **run),
        "pipeline_masked_positions": time_training(MaskedPositionsMLM(as_pipeline_trains(mlm(), params)),
                                                   line_by_line, collator, group_by_length=True,
                                                   trainer_class=LengthSortedTrainer, **run),
        "packed_masked_positions": time_training(MaskedPositionsMLM(as_pipeline_trains(mlm(), params)), packed,
                                                 collator, group_by_length=False, **run),
    }
    rows["speedup_samples_per_s"] = (rows["pipeline_masked_positions"]["samples_per_s"]
                                     / rows["hf_example_padded_full_vocab"]["samples_per_s"])
    return rows


def bench_inference(params, base: str, tokenizer, peak: float) -> dict:
    """samples/s as Trainer.predict measures them (model loading excluded), as evaluate reports them."""
    from transfer.tasks.classification import predict

    test = load_dataset_output(ROOT / "data/tokenized/target")["test"]
    texts = [r["text"] for r in read_jsonl(ROOT / "data/clean/target/test.jsonl")]
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(params.data.labels))
    with tempfile.TemporaryDirectory() as scratch:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        # run_glue.py's evaluation: every text padded to max_length, batches of 8 per device x 2.
        args = training_arguments(scratch, seed=0, epochs=1, learning_rate=1e-5, batch_size=8,
                                  eval_each_epoch=False, group_by_length=False, disable_tqdm=True)
        padded_test = padded(texts, tokenizer, params.tokenize.max_length, [0] * len(texts))
        baseline = Trainer(model=model, args=args).predict(padded_test).metrics["test_samples_per_second"]
        pipeline = predict(Path(scratch), test.sort("length"), params).samples_per_second
    flops_per_pass = encoder_flops(model.config, test["length"], training=False)
    return {"hf_example": {"samples_per_s": baseline, "batch_size": 16,
                           "share_of_gemm_peak": flops_per_pass * baseline / len(test) / peak},
            "pipeline": {"samples_per_s": pipeline, "batch_size": params.evaluate.batch_size,
                         "share_of_gemm_peak": flops_per_pass * pipeline / len(test) / peak},
            "speedup_samples_per_s": pipeline / baseline}


def run_in_venv(*command: str) -> tuple[float, subprocess.CompletedProcess]:
    """Seconds and result of a command run from the project root with the venv first on PATH (as `make` does)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, result


def noop_repro() -> dict:
    _, status = run_in_venv("dvc", "status")  # also warms the filesystem cache, as a second repro finds it
    if "up to date" not in status.stdout:
        return {"skipped": "the pipeline is not up to date: run `dvc repro` first"}
    seconds, result = run_in_venv("dvc", "repro")
    return {"seconds": seconds, "ran_nothing": "Running stage" not in result.stdout}


def stage_peak_rss() -> dict[str, float]:
    """GiB per stage, each re-run alone (same inputs and seed: same outputs) under /usr/bin/time -v."""
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    rss = {}
    for stage in stages:
        _, result = run_in_venv("/usr/bin/time", "-v", "dvc", "repro", "--force", "--single-item", stage)
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
        rss[stage] = round(int(found.group(1)) / 2**20, 2) if found else None
        print(f"bench: {stage} peak RSS {rss[stage]} GiB", flush=True)
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=26, help="optimizer steps per training row (first 3 untimed)")
    parser.add_argument("--mlm-steps", type=int, default=12, help="optimizer steps per MLM row")
    parser.add_argument("--rss", action="store_true", help="also re-run every stage for its peak RSS (slow)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results.json")
    cli = parser.parse_args()
    if not (ROOT / "data/tokenized/target").exists():
        raise SystemExit("bench: no data/tokenized yet: run `dvc repro` (or `make repro`) first")
    params = load_params(ROOT / "params.yaml")
    base = resolve_model(params.model.name)
    tokenizer = load_tokenizer(base, params)
    peak = gemm_peak_flops()
    print(f"bench: fp32 GEMM peak {peak / 1e9:.1f} GFLOP/s on {torch.get_num_threads()} threads", flush=True)
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                           "torch": torch.__version__, "gemm_peak_gflops": peak / 1e9},
               "model": params.model.name, "targets": TARGETS}
    results["finetune"] = bench_finetune(params, base, tokenizer, cli.steps, 3, peak)
    print(f"bench: finetune {json.dumps(results['finetune'], indent=1)}", flush=True)
    results["pretrain_domain"] = bench_pretrain(params, base, tokenizer, cli.mlm_steps, 2, peak)
    print(f"bench: pretrain {json.dumps(results['pretrain_domain'], indent=1)}", flush=True)
    results["inference"] = bench_inference(params, base, tokenizer, peak)
    results["noop_repro"] = noop_repro()
    if cli.rss:
        results["stage_peak_rss_gib"] = stage_peak_rss()
    cli.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
