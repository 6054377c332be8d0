"""The default scenario on the packaged SmolLM2-135M-Instruct, on CPU: what each decoder path does with a real
LLM, and what each stage costs.

    python bench/llm_recipe.py --project /path/to/clone [--stages base_model prompting pretrain_domain]

runs `dvc exp run` with RECIPE (the settings docs/decoders.md documents, printed by `--print-command`) in a
project that holds this repository (a clone; `make install` done), stamps each "Running stage" line DVC
prints to get every stage's wall time, and writes bench/llm_recipe.json and .md: the stage times and what
the metrics files say (base_model's provenance, continued pretraining's perplexity before/after and
forgetting, prompting raw vs calibrated, the headline, the student). Stages not asked for (and not upstream
of those asked for) do not run; their rows say so. Not a test: the run takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from transfer.analysis.significance import rows_gain_interval  # noqa: E402
from transfer.core.artifacts import read_csv  # noqa: E402
from transfer.core.params import load_params  # noqa: E402
from transfer.tasks.registry import get_task  # noqa: E402

# The CPU recipe for a 135M decoder on 2 cores: LoRA on every linear layer (the full model does not need to
# train), texts cut to 128 tokens (drug reviews: ~1/3 longer are cut), one epoch of continued pretraining,
# a 1,000-tweet source phase, one learning rate, 5 target epochs, a shorter prompt; the student (off in the
# default run) on. LoRA's rate is ~10x full fine-tuning's, for both phases: at 5e-4 and 3 epochs (21 steps
# from a fresh classification head) SmolLM2 stayed on one class of tweets->drugs validation; at 2e-3 it left
# it (a one-seed probe, not a tuned grid; not saved as a bench file). Every other value is the
# default's (3 training seeds per arm, distill from the trained model, prompting zero- and few-shot).
RECIPE = [
    "model.name=embedded:SmolLM2-135M-Instruct",
    "finetune.peft=lora",
    "finetune.learning_rate=[2.0e-3]",
    "finetune.source_learning_rate=2.0e-3",
    "finetune.target_epochs=5",
    "data.source_train_max=1000",
    "tokenize.max_length=128",
    "pretrain_domain.max_length=128",
    "pretrain_domain.epochs=1.0",
    "pretrain_domain.forgetting_texts=100",
    "prompting.max_text_tokens=96",
    "domain_shift.sample_size=100",
    "distill.enabled=true",
]
RESULTS = {"base_model": "models/base/provenance.json", "pretrain_domain": "metrics/pretrain.json",
           "prompting": "metrics/prompting.json", "evaluate": "metrics/eval.json", "distill": "metrics/distill.json",
           "compare": "metrics/compare.json"}


# The recipe's arms against the default's (MiniLM) on the same test rows: (name, the stage that writes the
# recipe side's predictions, the recipe project's prediction files, the default project's, whether the
# recipe's side trained). Evaluate writes both trained arms' predictions; prompting trains nothing.
VERSUS = [
    ("SmolLM2 LoRA sequential - MiniLM sequential", "evaluate", "data/predictions/target-*.csv",
     "data/predictions/target-*.csv", True),
    ("SmolLM2 LoRA target_only - MiniLM target_only", "evaluate", "data/predictions/baseline-*.csv",
     "data/predictions/baseline-*.csv", True),
    ("SmolLM2 zero-shot - MiniLM target_only", "prompting", "data/prompting/predictions_zero_shot.csv",
     "data/predictions/baseline-*.csv", False),
    ("SmolLM2 few-shot - MiniLM target_only", "prompting", "data/prompting/predictions_few_shot.csv",
     "data/predictions/baseline-*.csv", False),
]


def versus_default(recipe: Path, default: Path, ran: set[str] | None = None) -> list[dict]:
    """Each VERSUS difference in the primary metric's points, with the pipeline's own interval (the test rows
    and, on each side with several training seeds, the seeds drawn): does the LLM recipe beat the default run
    (`dvc repro` of params.yaml as committed, in `default`) on the default scenario, not only on the suite?
    `ran`: the stages this run ran (the others' files there may be an earlier run's); None: all."""
    params = load_params(recipe / "params.yaml")
    task = get_task(params.task)

    def seed_rows(project: Path, pattern: str) -> list[list[dict]]:
        files = sorted(project.glob(pattern))
        if not files:
            raise FileNotFoundError(f"{project / pattern}: no predictions; has the pipeline run there?")
        return [sorted(read_csv(path), key=lambda row: row["id"]) for path in files]

    compared = []
    for name, stage, ours, theirs, trained in VERSUS:
        if ran is not None and stage not in ran:
            continue
        recipe_rows, default_rows = seed_rows(recipe, ours), seed_rows(default, theirs)
        means = [sum(task.resampled_score(rows, params)(list(range(len(rows)))) for rows in side) / len(side)
                 for side in (recipe_rows, default_rows)]
        compared.append({"comparison": name, "seeds": [len(recipe_rows), len(default_rows)],
                         "difference_points": round((means[0] - means[1]) * task.points, 2),
                         **rows_gain_interval(task, params, recipe_rows, default_rows, name, trained)})
    return compared


def default_warnings(default: Path) -> list[str]:
    """What the default run's evaluate warned (a seed that predicts one class did not learn): a gain over such
    an arm is no gain, and the reader of the comparison must see it beside the figures."""
    path = default / "metrics/eval.json"
    return json.loads(path.read_text()).get("warnings", []) if path.exists() else []


def command(stages: list[str], extra: tuple[str, ...] = ()) -> list[str]:
    flags = [part for setting in (*RECIPE, *extra) for part in ("-S", setting)]
    return ["dvc", "exp", "run", *flags, *stages]


def run_timed(project: Path, argv: list[str]) -> tuple[dict[str, float], float, int]:
    """Each stage's wall seconds (from its "Running stage" line to the next one, or to the end) of a `dvc
    repro` / `dvc exp run` command line run in `project`; the total, and the exit code."""
    started = time.perf_counter()
    times: dict[str, float] = {}
    current, since = None, started
    process = subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        if line.startswith("Running stage '"):
            now = time.perf_counter()
            if current:
                times[current] = round(now - since, 1)
            current, since = line.split("'")[1], now
    code = process.wait()
    end = time.perf_counter()
    if current:
        times[current] = round(end - since, 1)
    return times, round(end - started, 1), code


def markdown(report: dict) -> str:
    lines = [f"`{shlex.join(command(report['targets'], tuple(report.get('extra', ()))))}`", "",
             f"{report['machine']}; total {report['wall_seconds'] / 60:.1f} min, exit code {report['exit_code']}.",
             *([f"Conditions: {report['note']}"] if report.get("note") else []),
             "", "| stage | wall time (s) |", "|---|---|"]
    lines += [f"| {stage} | {seconds} |" for stage, seconds in report["stage_seconds"].items()]
    results = report["results"]
    if pretrain := results.get("pretrain_domain"):
        lines += ["", "Continued pretraining (causal LM): held-out target perplexity "
                  f"{pretrain['before']['perplexity']} → {pretrain['after']['perplexity']}; forgetting (source "
                  f"validation text) {pretrain['forgetting']['before']['perplexity']} → "
                  f"{pretrain['forgetting']['after']['perplexity']}."]
    if (prompting := results.get("prompting")) and prompting.get("applicable"):
        lines += ["", "| prompting | macro-F1 (calibrated) | accuracy | uncalibrated macro-F1 | uncalibrated accuracy "
                  "| predicted (calibrated) | predicted (uncalibrated) |", "|---" * 7 + "|"]
        for method in ("zero_shot", "few_shot"):
            if entry := prompting.get(method):
                raw = entry.get("uncalibrated", {})
                lines.append(f"| {method} | {entry['macro_f1']:.4f} | {entry['accuracy']:.4f} | "
                             f"{raw.get('macro_f1', float('nan')):.4f} | {raw.get('accuracy', float('nan')):.4f} | "
                             f"{entry['predicted_counts']} | {raw.get('predicted_counts')} |")
    if evaluation := results.get("evaluate"):
        low, high = evaluation["gain_ci95_points"]
        lines += ["", f"Headline ({evaluation['strategy']} vs target_only, LoRA): "
                  f"{evaluation['target']['macro_f1']:.4f} vs {evaluation['baseline']['macro_f1']:.4f}, "
                  f"gain {evaluation['gain_macro_f1_points']:+.2f} [{low:+.2f}, {high:+.2f}], "
                  f"significant: {evaluation['significant']}."]
        lines += [f"- the recipe's run warned: {warning}" for warning in evaluation.get("warnings", [])]
    if compare := results.get("compare"):
        lines += ["", "| arm (compare) | macro-F1 | std over seeds | seeds | gain (points) | 95% interval |",
                  "|---" * 6 + "|"]
        for arm, entry in compare.items():
            interval = entry.get("gain_ci95_points")
            lines.append(f"| {arm} | {entry['macro_f1']:.4f} | {entry['macro_f1_std']:.4f} | {entry['seeds']} | "
                         f"{entry['gain_macro_f1_points']:+.2f} | "
                         f"{f'[{interval[0]:+.2f}, {interval[1]:+.2f}]' if interval else ''} |")
    if versus := report.get("versus_default"):
        lines += ["", f"Against the default run (MiniLM, `dvc repro` of params.yaml; {report['default_note']}), on the "
                  "same test rows: difference in points [95% interval over the test rows and both sides' training "
                  "seeds]:", ""]
        lines += [f"- {entry['comparison']} ({entry['seeds'][0]} vs {entry['seeds'][1]} seeds): "
                  f"{entry['difference_points']:+.2f} [{entry['gain_ci95_points'][0]:+.2f}, "
                  f"{entry['gain_ci95_points'][1]:+.2f}], significant: {entry['significant']}" for entry in versus]
        lines += [f"- the default run warned: {warning}" for warning in report.get("default_warnings", [])]
    if (distill := results.get("distill")) and "student" in distill:
        teacher, student = distill["teacher"], distill["student"]
        low, high = distill["student_gain_ci95_points"]
        lines += ["", f"Student ({student['from']}, {student['layers']} layers, {student['parameters']:,} parameters) "
                  f"of the {teacher['strategy']} teacher ({teacher['parameters']:,} parameters, macro-F1 "
                  f"{teacher['macro_f1']:.4f}): macro-F1 {student['macro_f1']:.4f}, gain over the target_only "
                  f"baseline {distill['student_gain_over_baseline_points']:+.2f} [{low:+.2f}, {high:+.2f}] "
                  "(one student seed)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path)
    parser.add_argument("--stages", nargs="*", default=[], help="dvc targets (default: the whole DAG)")
    parser.add_argument("--out", type=Path, default=Path("bench/llm_recipe.json"))
    parser.add_argument("--print-command", action="store_true", help="print the recipe's dvc exp run line")
    parser.add_argument("--note", help="what else ran on the machine, or anything a reader of the timings needs")
    parser.add_argument("--annotate", action="store_true",
                        help="run nothing: add --note (and --versus) to the existing --out and rewrite its .md")
    parser.add_argument("--versus", type=Path,
                        help="a project where the default (params.yaml as committed) ran: compare the recipe's "
                             "arms with its arms on the same test rows")
    parser.add_argument("--versus-note", default="", help="how and where the default run ran")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="settings added to the recipe's for this run (e.g. data.target_train_labeled=100)")
    args = parser.parse_args()
    if args.print_command:
        print(shlex.join(command([])))
        return
    if args.annotate:
        report = json.loads(args.out.read_text()) | ({"note": args.note} if args.note else {})
        if args.versus:
            if args.project is None:
                parser.error("--versus needs --project: where the recipe ran")
            report |= {"versus_default": versus_default(args.project, args.versus, set(report["stage_seconds"])),
                       "default_note": args.versus_note, "default_warnings": default_warnings(args.versus)}
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(markdown(report))
        return
    if args.project is None:
        parser.error("--project is required")
    stage_seconds, wall, code = run_timed(args.project, command(args.stages, tuple(args.set)))
    results = {stage: json.loads((args.project / path).read_text()) for stage, path in RESULTS.items()
               if stage in stage_seconds and (args.project / path).exists()}
    report = {"recipe": RECIPE, "extra": args.set, "targets": args.stages, "exit_code": code, "wall_seconds": wall,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "note": args.note, "stage_seconds": stage_seconds, "results": results}
    if args.versus and code == 0:
        report |= {"versus_default": versus_default(args.project, args.versus, set(stage_seconds)),
                   "default_note": args.versus_note, "default_warnings": default_warnings(args.versus)}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
