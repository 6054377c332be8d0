"""label_budget: the target test score against the number of labeled target examples.

The score is the task's primary one: macro-F1, QA F1 or chrF (written macro-F1 below).

The `budget_baseline` / `budget_target` matrices in dvc.yaml train target_only and the chosen
strategy on nested, label-stratified subsets of the labeled target train set
(`finetune_target --labels N`); the full budget is the headline pair (models/baseline,
models/target), already scored in metrics/eval.json. This stage scores the rest and answers the
practitioner's question: how many target labels does the transfer save?

    labels_saved = N - n'   where target_only reaches macro-F1 q with all N labels,
                            and the transfer reaches q with n' labels (interpolated in log n).

That is the same quantity as "target_only needs N labels to match the transfer with n'"; it is
measured at target_only's full-budget quality because that is the only level both curves reach
without labels the scenario does not have (the gain at N would need target_only beyond N).
Writes metrics/label_budget.json and metrics/plots/label_budget.csv (the DVC plot).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from stages.artifacts import load_dataset_output, read_json, write_csv, write_json
from stages.errors import run_stage
from stages.evaluate import score_model
from stages.label_subsets import original_rows
from stages.params import load_params
from stages.tasks import METRIC_NAMES, primary_metric

BUDGET = Path("models/budget")
CURVES = ("target_only", "transfer")  # the baseline recipe, and finetune.strategy from models/domain


def labels_to_reach(curve: dict[int, float], quality: float) -> tuple[float | None, bool]:
    """Labels at which `curve` first reaches `quality`, linear in log(labels) between points.

    Returns (labels, at_most): at_most when the smallest budget already reaches it (the true
    figure may be lower); (None, False) when no budget reaches it.
    """
    points = sorted(curve.items())
    if points[0][1] >= quality:
        return float(points[0][0]), True
    for (n0, f0), (n1, f1) in zip(points, points[1:], strict=False):
        if f0 < quality <= f1:
            share = (quality - f0) / (f1 - f0)
            return math.exp(math.log(n0) + share * (math.log(n1) - math.log(n0))), False
    return None, False


def labels_saved(target_only: dict[int, float], transfer: dict[int, float], full_budget: int,
                 metric: str = "macro_f1") -> dict:
    quality = target_only[full_budget]
    needed, at_most = labels_to_reach(transfer, quality)
    if needed is None:
        return {f"quality_{metric}": quality, "transfer_labels_needed": None, "labels_saved": None,
                "note": f"the transfer does not reach target_only's full-budget {METRIC_NAMES[metric]} at any budget: "
                        f"no labels saved"}
    return {f"quality_{metric}": quality, "transfer_labels_needed": round(needed, 1),
            "labels_saved": round(full_budget - needed, 1), "labels_saved_is_lower_bound": at_most,
            "label_efficiency": round(full_budget / needed, 2)}


def main() -> None:
    params = load_params()
    config = params.label_budget
    metric = primary_metric(params.task)
    headline = read_json("metrics/eval.json")
    target = load_dataset_output("data/tokenized/target")
    full_budget = len(original_rows(target["train"]))

    scores: dict[str, dict[int, list[float]]] = {"target_only": {full_budget: [headline["baseline"][metric]]},
                                                 "transfer": {full_budget: [headline["target"][metric]]}}
    # Sizes at or above the labeled set: their budget stages trained nothing (finetune_target --labels).
    dropped = sorted(size for size in config.sizes if size >= full_budget)
    sizes = [size for size in config.sizes if size < full_budget]
    for curve, prefix in (("target_only", "baseline"), ("transfer", "chosen")):
        for size in sizes:
            scores[curve][size] = []
            for seed in config.seeds:
                model_dir = BUDGET / f"{prefix}-{size}-{seed}"
                scores[curve][size].append(score_model(model_dir, target, params)[0][metric])
                print(f"label_budget: {curve} with {size} labels (seed {seed}): {METRIC_NAMES[metric]} "
                      f"{scores[curve][size][-1]:.4f}")

    means = {curve: {n: statistics.mean(v) for n, v in points.items()} for curve, points in scores.items()}
    spreads = {curve: {n: statistics.stdev(v) if len(v) > 1 else 0.0 for n, v in points.items()}
               for curve, points in scores.items()}
    saved = labels_saved(means["target_only"], means["transfer"], full_budget, metric)
    report = {"strategy": headline["strategy"], "pretrain_domain": headline["pretrain_domain"],
              "full_budget": full_budget, "seeds": len(config.seeds),
              "curve": {curve: {str(n): round(f, 4) for n, f in sorted(points.items())}
                        for curve, points in means.items()},
              **saved}
    if dropped:
        report["dropped_sizes"] = dropped
        report["dropped_note"] = (f"label_budget.sizes {dropped} are not below the {full_budget} labeled target "
                                  f"train examples after cleaning; the full budget is the headline pair")
        print(f"label_budget: {report['dropped_note']}")
    write_json("metrics/label_budget.json", report)
    write_csv("metrics/plots/label_budget.csv",
              [{"labels": n, **{curve: round(means[curve][n], 4) for curve in CURVES},
                **{f"{curve}_std": round(spreads[curve][n], 4) for curve in CURVES}}
               for n in sorted(means["target_only"])])
    if saved["labels_saved"] is None:
        print(f"label_budget: {saved['note']}")
    else:
        print(f"label_budget: target_only needs {full_budget} labels for {METRIC_NAMES[metric]} "
              f"{saved[f'quality_{metric}']:.4f}; "
              f"{headline['strategy']} reaches it with {saved['transfer_labels_needed']:.0f}"
              f"{' or fewer' if saved['labels_saved_is_lower_bound'] else ''}: "
              f"{saved['labels_saved']:.0f} labels saved")


if __name__ == "__main__":
    run_stage(main)
