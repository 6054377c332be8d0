"""Strategies side by side: mean and spread over seeds, the gain over the baseline with its 95% interval
(test examples and seeds resampled), negative transfer."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from transfer.analysis.significance import rows_gain_interval
from transfer.core.params import Params

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task


def summarize(scores: dict[str, list[float]], baseline: float, metric: str, points: float,
              margin_points: float) -> dict[str, dict]:
    """Per strategy: the mean primary score over seeds and its spread, the gain over the baseline in points,
    and a negative-transfer flag when the gain is below zero by more than the seed-to-seed spread (or the
    margin, with one seed)."""
    margin = margin_points / points
    rows = {}
    for name, values in scores.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        gain = statistics.mean(values) - baseline
        rows[name] = {metric: statistics.mean(values), f"{metric}_std": spread,
                      "seeds": len(values), f"gain_{metric}_points": round(points * gain, 2),
                      "negative_transfer": gain < -max(spread, margin)}
    return rows


def gain_intervals(task: Task, params: Params, rows: dict[str, list[list[dict]]],
                   untrained: set[str] = frozenset()) -> dict[str, dict]:
    """Per entry but the baseline: the primary gain's 95% interval over the baseline, from each seed's
    per-example rows, test examples and seeds resampled together. `untrained` entries (prompting) have no
    training seed to vary."""
    return {name: rows_gain_interval(task, params, per_seed, rows["baseline"], f"compare: {name}",
                                     transferred_trained=name not in untrained)
            for name, per_seed in rows.items() if name != "baseline"}
