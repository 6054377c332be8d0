"""compare: every trained strategy on the target test split, side by side.

Reads models/trained/baseline, models/trained/target, each models/compare/<strategy>-<seed> (the
`compare.strategies` x `compare.seeds` matrix in dvc.yaml) and, with a decoder model.name, the prompting
baselines' predictions (data/prompting). Per strategy: mean and spread of
the task's primary score (macro-F1, QA F1, chrF) over seeds, the gain over the target-only
baseline (over its seeds) with its 95% interval and `significant` (a bootstrap over the test examples and the
seeds; null with one training seed on a side), and a negative-transfer flag when the gain is below zero
by more than the seed-to-seed spread (or the margin, with one seed). The headline arms enter with all their
training seeds (finetune.seed_offsets).
Writes metrics/compare.json, metrics/timing.json (wall times) and the bar chart's table.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from transfer.analysis.comparison import gain_intervals, summarize
from transfer.core.artifacts import (
    load_dataset_output,
    read_csv,
    read_json,
    seed_folders,
    trained_folder,
    write_csv,
    write_json,
)
from transfer.core.modeling import TRAINING_REPORT
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.core.switches import not_run_record, switched_off
from transfer.tasks.registry import task_for

COMPARE, PREDICTIONS, PROMPTING = Path("models/compare"), Path("data/predictions"), Path("data/prompting")
SOURCE_TIMING = Path("metrics/source_timing.json")


def label(report: dict) -> str:
    return report["strategy"] + ("" if report["peft"] == "none" else f"+{report['peft']}")


def main() -> None:
    params = load_params()
    task = task_for(params)
    metric = task.primary
    headline = read_json("metrics/eval.json")  # baseline and chosen model, already scored by evaluate
    scores: dict[str, list[float]] = defaultdict(list)
    rows: dict[str, list[list[dict]]] = defaultdict(list)  # per entry, per seed: evaluate's per-example rows
    timing = {}
    for key in ("baseline", "target"):
        report = read_json(trained_folder(key) / TRAINING_REPORT)
        name = "baseline" if key == "baseline" else f"chosen:{label(report)}"
        # Every training seed of the headline arms (finetune.seed_offsets), as evaluate scored them.
        for seed, result in headline[key]["seeds"].items():
            scores[name].append(result[metric])
            rows[name].append(read_csv(PREDICTIONS / f"{key}-{seed}.csv"))
        timing[name] = report["wall_time_s"]
        for seed, folder in seed_folders(trained_folder(key), params.seed, params.finetune.seed_offsets).items():
            if seed != params.seed:
                timing[f"{name}@{seed}"] = read_json(folder / TRAINING_REPORT)["wall_time_s"]
    # The source phase: trained once by finetune_source, the start of the chosen model (when it has one),
    # of source_only and of the label-budget points; their times above do not include it.
    timing |= read_json(SOURCE_TIMING)

    if not params.compare.enabled:  # the headline arms' wall times still go to timing.json
        write_json("metrics/compare.json", not_run_record("compare"))
        write_json("metrics/timing.json", timing)
        write_csv("metrics/plots/compare.csv", [], fieldnames=["strategy", "score"])
        print(f"compare: not run: {switched_off('compare')}")
        return
    target = load_dataset_output("data/tokenized/target")
    # Only the matrix that params declare now: DVC leaves the folders of removed entries in place.
    for model_dir in [COMPARE / f"{s}-{seed}" for s in params.compare.strategies for seed in params.compare.seeds]:
        report = read_json(model_dir / TRAINING_REPORT)
        result, example_rows = task.score(model_dir, target, params)
        value = result[metric]
        name = label(report)
        scores[name].append(value)
        rows[name].append(example_rows)
        timing[f"{name}@{report['seed']}"] = report["wall_time_s"]
        print(f"compare: {model_dir} {task.metrics[metric]} {value:.4f}")

    # The prompting baselines (a decoder model.name): scored by the prompting stage, no training.
    prompting = read_json("metrics/prompting.json")
    if prompting.get("applicable"):
        for method in params.prompting.methods:
            scores[method].append(prompting[method][metric])
            rows[method].append(read_csv(PROMPTING / f"predictions_{method}.csv"))

    table = summarize(scores, statistics.mean(scores["baseline"]), metric, task.points,
                      params.evaluate.negative_transfer_margin)
    untrained = set(params.prompting.methods) if prompting.get("applicable") else set()
    for name, interval in gain_intervals(task, params, rows, untrained).items():
        table[name] |= interval
    write_json("metrics/compare.json", table)
    write_json("metrics/timing.json", timing)
    write_csv("metrics/plots/compare.csv", [{"strategy": k, "score": v[metric]} for k, v in table.items()])


if __name__ == "__main__":
    run_stage(main)
