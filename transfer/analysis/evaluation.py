"""The headline comparison: the transferred model against the target-only baseline, in the task's scores,
over the training seeds of both arms (finetune.seed_offsets), with an interval that covers them."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from transfer.analysis.significance import row_groups, seeds_and_examples_bootstrap, significance_claim
from transfer.core.artifacts import HEADLINE_ARMS
from transfer.core.params import Params

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

ARMS = HEADLINE_ARMS  # the transferred model and the baseline (transfer/core/artifacts.py says where each lives)


def arm_summary(task: Task, results: dict[int, dict], tuning: dict[int, dict]) -> dict:
    """One arm over its training seeds: each metric's mean and standard deviation, every seed's scores, and
    what each seed chose on validation (learning rate, epoch, logit adjustment)."""
    summary = {}
    for metric in task.metrics:
        values = [result[metric] for result in results.values()]
        summary[metric] = statistics.mean(values)
        summary[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    first = next(iter(tuning.values()), {})
    summary["learning_rate"] = first.get("learning_rate")
    if "validation_scores" in first:
        summary["learning_rate_validation_scores"] = first["validation_scores"]
    summary["best_epoch"] = {str(seed): report.get("best_epoch") for seed, report in tuning.items()}
    summary["logit_adjustment"] = {str(seed): report.get("logit_adjustment") for seed, report in tuning.items()}
    if any("abstention_threshold" in report for report in tuning.values()):  # QA: when the model abstains
        summary["abstention_threshold"] = {str(seed): report.get("abstention_threshold")
                                           for seed, report in tuning.items()}
    summary["seeds"] = {str(seed): result for seed, result in results.items()}
    return summary


def did_not_learn(tuning: dict[str, dict[int, dict]]) -> list[str]:
    """A warning per arm and seed whose model predicts one class for every validation example."""
    warnings = []
    for arm, reports in tuning.items():
        for seed, report in reports.items():
            if report.get("predicts_one_class"):
                name = "the baseline" if arm == "baseline" else "the transferred model"
                consequence = ("its gain is not a transfer gain" if arm == "baseline"
                               else "its score is no transfer result")
                warnings.append(f"{name} (seed {seed}) predicts '{report['predicts_one_class']}' for every "
                                f"validation example: it did not learn; {consequence}")
    return warnings


def headline_report(task: Task, params: Params, results: dict[str, dict[int, dict]], test_examples: int,
                    rows: dict[str, dict[int, list[dict]]], tuning: dict[str, dict[int, dict]],
                    levers: dict | None = None, selection: dict | None = None, trivial: dict | None = None) -> dict:
    """metrics/eval.json: each arm over its seeds (arm_summary), the gain of the means in points per metric, the
    primary gain's 95% interval over test examples and seeds, `significant` only where both arms have two or
    more seeds (null with the reason otherwise), negative transfer when the primary gain is below
    -evaluate.negative_transfer_margin, and a warning per model that did not learn."""
    arms = {arm: arm_summary(task, results[arm], tuning.get(arm, {})) for arm in ARMS}
    gains = {metric: task.points * (arms["target"][metric] - arms["baseline"][metric]) for metric in task.metrics}
    warnings = did_not_learn(tuning) + below_trivial(task, arms, trivial)
    return {
        "task": task.name,
        "strategy": params.finetune.strategy,
        "pretrain_domain": params.pretrain_domain.enabled,
        "test_examples": test_examples,
        "training_seeds": {arm: sorted(results[arm]) for arm in ARMS},
        **arms,
        **{f"gain_{metric}_points": round(gain, 2) for metric, gain in gains.items()},
        **gain_interval(task, params, rows),
        "negative_transfer": gains[task.primary] < -params.evaluate.negative_transfer_margin,
        "warnings": warnings,
        **({"trivial_baseline": trivial} if trivial else {}),
        **({"levers": levers} if levers else {}),
        **({"selection": selection} if selection else {}),
    }


def below_trivial(task: Task, arms: dict[str, dict], trivial: dict | None) -> list[str]:
    """A warning per arm whose mean primary score is no better than a constant predictor's."""
    if not trivial:
        return []
    metric, name = task.primary, task.metrics[task.primary]
    return [f"the {'baseline' if arm == 'baseline' else 'transferred model'} ({name} {arms[arm][metric]:.4f}) "
            f"does no better than {trivial['name']} ({trivial[metric]:.4f})"
            for arm in ARMS if arms[arm][metric] <= trivial[metric]]


def gain_interval(task: Task, params: Params, rows: dict[str, dict[int, list[dict]]]) -> dict:
    """The primary gain's 95% interval, test examples and both arms' seeds resampled together, and whether
    it may be called significant (significance_claim)."""
    ids = [row["id"] for row in next(iter(rows["baseline"].values()))]
    if any([row["id"] for row in seed_rows] != ids for arm in ARMS for seed_rows in rows[arm].values()):
        raise RuntimeError("evaluate: the models were scored on different test examples")
    interval = seeds_and_examples_bootstrap([task.resampled_score(r, params) for r in rows["target"].values()],
                                            [task.resampled_score(r, params) for r in rows["baseline"].values()],
                                            len(ids), resamples=params.evaluate.bootstrap_resamples,
                                            seed=params.seed, points=task.points,
                                            groups=row_groups(next(iter(rows["baseline"].values()))))
    return interval | significance_claim(interval, len(rows["target"]), len(rows["baseline"]))


def headline_line(task: Task, report: dict) -> str:
    """The one line evaluate prints."""
    primary, second = list(task.metrics)[:2]
    names = task.metrics
    gain = report[f"gain_{primary}_points"]
    strategy = report["strategy"]
    if "selection" in report:
        strategy += f" (chose {report['selection']['chosen']})"
    seeds = len(report["training_seeds"]["target"]), len(report["training_seeds"]["baseline"])
    return (f"evaluate: {strategy} {names[primary]} {arm_words(report['target'], primary)} "
            f"({names[second]} {report['target'][second]:.4f}); target_only baseline "
            f"{arm_words(report['baseline'], primary)}; gain {gain:+.2f} points {interval_words(report)} "
            f"over {seeds[0]} / {seeds[1]} training seeds"
            + ("  ** NEGATIVE TRANSFER **" if report["negative_transfer"] else ""))


def arm_words(arm: dict, metric: str) -> str:
    """"0.5413 ± 0.0210" (mean ± std over seeds), or the one seed's score."""
    return f"{arm[metric]:.4f}" + (f" ± {arm[f'{metric}_std']:.4f}" if len(arm.get("seeds", {})) > 1 else "")


def interval_words(report: dict) -> str:
    """"(95% CI +10.12 to +26.40, significant)", as every place that shows a gain says it; with one training
    seed on a side, "one seed: no significance claim"."""
    low, high = report["gain_ci95_points"]
    if report.get("significant") is None:
        verdict = report.get("significance_note", "no significance claim")
    else:
        verdict = "significant" if report["significant"] else "not significant"
    return f"(95% CI {low:+.2f} to {high:+.2f}, {verdict})"
