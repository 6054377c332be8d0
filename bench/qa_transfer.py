"""Extractive QA transfer on real data: SQuAD 2.0 (Wikipedia, half its questions unanswerable) -> SquadShifts'
Amazon product reviews (bench/qa/: the files, how they were cut, their licences), through the pipeline as a
user runs it.

    git clone . /tmp/qa-project && PATH=$PWD/.venv/bin:$PATH python bench/qa_transfer.py --project /tmp/qa-project

runs `dvc exp run` with PAIR (the pair's files and the QA settings; every other value is the default recipe:
TAPT on the unlabeled target contexts, the source phase, the sequential target phase, the target-only
baseline tuned the same way, 3 training seeds per arm) up to `evaluate` in the project, times each stage,
and writes bench/qa_transfer.json and .md: always abstaining, the baseline and the transfer (EM / F1, mean ±
std over training seeds), the gain with its 95% interval over test questions and seeds, the abstention
thresholds chosen on target validation, each stage's wall time. Not a test: tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# (`~key` drops a key and `+key=value` adds one: the packaged corpus's `name` gives way to the files)
PAIR = [
    "task=qa",
    "data.labels=[]",
    "~data.source.name", "data.source.kind=files",
    "+data.source.train=bench/qa/source_train.json", "+data.source.validation=bench/qa/source_validation.json",
    "~data.target.name", "data.target.kind=files",
    "+data.target.train=bench/qa/target_train.json", "+data.target.validation=bench/qa/target_validation.json",
    "+data.target.test=bench/qa/target_test.json",
    "data.source_train_max=0",        # every source question the carve-out leaves (80% of source_train.json)
    "data.target_train_labeled=200",  # the rest of the target train contexts are unlabeled text (TAPT)
]
RESULTS = {"clean": "metrics/clean.json", "pretrain_domain": "metrics/pretrain.json", "evaluate": "metrics/eval.json"}


def command(settings: list[str]) -> list[str]:
    return ["dvc", "exp", "run", *[part for setting in settings for part in ("-S", setting)], "evaluate"]


def run_timed(project: Path, argv: list[str]):
    spec = importlib.util.spec_from_file_location("bench_llm_recipe", BENCH / "llm_recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_timed(project, argv)


def mean_over_seeds(seeds: dict, key: str) -> str:
    """The official v2.0 script's HasAns_/NoAns_ score averaged over seeds ("—" where the test split has one
    kind of question only, so evaluate writes none)."""
    values = [scores[key] for scores in seeds.values() if key in scores]
    return f"{sum(values) / len(values):.1f}" if values else "—"


def arm_line(name: str, arm: dict) -> str:
    seeds = arm.get("seeds", {})
    per_seed = ", ".join(f"{seed}: {scores['f1']:.1f}" for seed, scores in seeds.items())
    thresholds = arm.get("abstention_threshold", {})
    epochs = ", ".join(f"{epoch:g}" for epoch in arm.get("best_epoch", {}).values())
    return (f"| {name} | {arm['exact_match']:.1f} ± {arm.get('exact_match_std', 0):.1f} | "
            f"{arm['f1']:.1f} ± {arm.get('f1_std', 0):.1f} | {mean_over_seeds(seeds, 'HasAns_f1')} | "
            f"{mean_over_seeds(seeds, 'NoAns_f1')} | {per_seed} | {arm.get('learning_rate', '')} | "
            f"{epochs} | {', '.join('never' if t is None else f'{t:.2f}' for t in thresholds.values()) or '—'} |")


def target_name(settings: list[str]) -> str:
    """The target's train file the settings point at (the last one set wins, as in dvc exp run)."""
    return [s.split("=", 1)[1] for s in settings if s.lstrip("+~").startswith("data.target.train=")][-1]


def markdown(report: dict) -> str:
    lines = [f"`{shlex.join(command(report['settings']))}` (bench/qa_transfer.py)", "",
             f"{report['machine']}; total {report['wall_seconds'] / 60:.1f} min, exit code {report['exit_code']}.",
             *([f"Conditions: {report['note']}"] if report.get("note") else [])]
    results = report["results"]
    if evaluation := results.get("evaluate"):
        trivial = evaluation.get("trivial_baseline", {})
        low, high = evaluation["gain_ci95_points"]
        unit = (f"{evaluation['resampled_groups']} test articles drawn whole" if "resampled_groups" in evaluation
                else "test questions")
        target = target_name(report["settings"])
        lines += ["", f"Target test: {evaluation['test_examples']} questions (target `{target}`); "
                  f"training seeds {evaluation['training_seeds']['target']}.", "",
                  "| arm | exact match | F1 | HasAns F1 | NoAns F1 (abstained right) | F1 per seed | learning rate "
                  "| best epoch per seed | abstention threshold per seed |",
                  "|---|---:|---:|---:|---:|---|---:|---|---|"]
        if trivial:
            lines.append(f"| {trivial['name']} | {trivial['exact_match']:.1f} | {trivial['f1']:.1f} | | | | | | |")
        lines += [arm_line("target_only (baseline)", evaluation["baseline"]),
                  arm_line(f"{evaluation['strategy']} (transfer)", evaluation["target"]), "",
                  f"Gain in F1: {evaluation['gain_f1_points']:+.2f} points [{low:+.2f}, {high:+.2f}] (95% interval "
                  f"over {unit} and training seeds); significant: {evaluation['significant']}; "
                  f"gain in exact match {evaluation['gain_exact_match_points']:+.2f}. Learning rate and epoch are "
                  "chosen by target validation F1 (after each model's abstention threshold), the rate at the "
                  "first seed, for both arms alike. HasAns / NoAns: the official v2.0 script's split, mean over "
                  "seeds."]
        lines += [f"- warning: {warning}" for warning in evaluation.get("warnings", [])]
    if (pretrain := results.get("pretrain_domain")) and "before" in pretrain:
        forgetting = pretrain.get("forgetting", {})
        lines += ["", f"TAPT ({pretrain['objective']}, {pretrain['train_texts']} target contexts): held-out target "
                  f"perplexity {pretrain['before']['perplexity']:.1f} → {pretrain['after']['perplexity']:.1f}"
                  + (f"; source text {forgetting['before']['perplexity']:.1f} → "
                     f"{forgetting['after']['perplexity']:.1f}" if "before" in forgetting else "") + "."]
    lines += ["", "| stage | wall time (s) |", "|---|---:|"]
    lines += [f"| {stage} | {seconds} |" for stage, seconds in report["stage_seconds"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="a clone of this repository")
    parser.add_argument("-S", "--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a params setting on top of PAIR (as dvc exp run -S)")
    parser.add_argument("--out", type=Path, default=BENCH / "qa_transfer.json")
    parser.add_argument("--note", help="what else ran on the machine, or anything a reader of the timings needs")
    parser.add_argument("--render", action="store_true",
                        help="run nothing: rewrite --out's .md from its .json (after a change to the tables)")
    args = parser.parse_args()
    if args.render:
        args.out.with_suffix(".md").write_text(markdown(json.loads(args.out.read_text())))
        return
    if args.project is None:
        parser.error("--project is required")
    settings = PAIR + args.settings
    stage_seconds, wall, code = run_timed(args.project, command(settings))
    results = {stage: json.loads((args.project / path).read_text()) for stage, path in RESULTS.items()
               if stage in stage_seconds and (args.project / path).exists()}
    report = {"settings": settings, "exit_code": code, "wall_seconds": wall,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "note": args.note, "stage_seconds": stage_seconds, "results": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
