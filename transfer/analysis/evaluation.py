"""The headline comparison: the transferred model against the target-only baseline, in the task's scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from transfer.analysis.significance import paired_bootstrap
from transfer.core.params import Params

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task


def headline_report(task: Task, params: Params, results: dict[str, dict], test_examples: int,
                    rows: dict[str, list[dict]], levers: dict | None = None, selection: dict | None = None) -> dict:
    """metrics/eval.json: both models' scores, the gain over the baseline in points per metric with the primary
    gain's 95% bootstrap interval and whether it excludes zero, flagged as negative transfer when the primary
    gain is below -evaluate.negative_transfer_margin."""
    gains = {metric: task.points * (results["target"][metric] - results["baseline"][metric])
             for metric in task.metrics}
    return {
        "task": task.name,
        "strategy": params.finetune.strategy,
        "pretrain_domain": params.pretrain_domain.enabled,
        "test_examples": test_examples,
        "target": results["target"],
        "baseline": results["baseline"],
        **{f"gain_{metric}_points": round(gain, 2) for metric, gain in gains.items()},
        **gain_interval(task, params, rows),
        "negative_transfer": gains[task.primary] < -params.evaluate.negative_transfer_margin,
        **({"levers": levers} if levers else {}),
        **({"selection": selection} if selection else {}),
    }


def gain_interval(task: Task, params: Params, rows: dict[str, list[dict]]) -> dict:
    """The primary gain's paired-bootstrap interval over the test examples both models were scored on."""
    if [row["id"] for row in rows["target"]] != [row["id"] for row in rows["baseline"]]:
        raise RuntimeError("evaluate: the two models were scored on different test examples")
    return paired_bootstrap(task.resampled_score(rows["target"], params),
                            task.resampled_score(rows["baseline"], params), len(rows["target"]),
                            resamples=params.evaluate.bootstrap_resamples, seed=params.seed, points=task.points)


def headline_line(task: Task, report: dict) -> str:
    """The one line evaluate prints."""
    primary, second = list(task.metrics)[:2]
    names = task.metrics
    gain = report[f"gain_{primary}_points"]
    strategy = report["strategy"]
    if "selection" in report:
        strategy += f" (chose {report['selection']['chosen']})"
    return (f"evaluate: {strategy} {names[primary]} {report['target'][primary]:.4f} "
            f"({names[second]} {report['target'][second]:.4f}); target_only baseline "
            f"{report['baseline'][primary]:.4f}; gain {gain:+.2f} points {interval_words(report)}"
            + ("  ** NEGATIVE TRANSFER **" if report["negative_transfer"] else ""))


def interval_words(report: dict) -> str:
    """"(95% CI +10.12 to +26.40, significant)", as every place that shows the headline gain says it."""
    low, high = report["gain_ci95_points"]
    return f"(95% CI {low:+.2f} to {high:+.2f}, {'significant' if report['significant'] else 'not significant'})"
