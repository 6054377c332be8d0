"""Strategies side by side: mean and spread over seeds, the gain over the baseline, negative transfer."""

from __future__ import annotations

import statistics


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
