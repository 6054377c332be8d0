"""The headline comparison: the transferred model against the target-only baseline, in the task's scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from transfer.core.params import Params

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task


def headline_report(task: Task, params: Params, results: dict[str, dict], test_examples: int) -> dict:
    """metrics/eval.json: both models' scores and the gain over the baseline in points per metric, flagged
    as negative transfer when the primary score's gain is below -evaluate.negative_transfer_margin."""
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
        "negative_transfer": gains[task.primary] < -params.evaluate.negative_transfer_margin,
    }


def headline_line(task: Task, report: dict) -> str:
    """The one line evaluate prints."""
    primary, second = list(task.metrics)[:2]
    names = task.metrics
    gain = report[f"gain_{primary}_points"]
    return (f"evaluate: {report['strategy']} {names[primary]} {report['target'][primary]:.4f} "
            f"({names[second]} {report['target'][second]:.4f}); target_only baseline "
            f"{report['baseline'][primary]:.4f}; gain {gain:+.2f} points"
            + ("  ** NEGATIVE TRANSFER **" if report["negative_transfer"] else ""))
