"""compare: every trained strategy on the target test split, side by side.

Reads models/baseline, models/target and each models/compare/<strategy>-<seed> (the
`compare.strategies` x `compare.seeds` matrix in dvc.yaml). Per strategy: mean and spread of
macro-F1 over seeds, the gain over the target-only baseline, and a negative-transfer flag when the
gain is below zero by more than the seed-to-seed spread (or the margin, with one seed).
Writes metrics/compare.json, metrics/timing.json (wall times) and the bar chart's table.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from stages.artifacts import load_dataset_output, read_json, write_csv, write_json
from stages.evaluate import predict
from stages.modeling import TRAINING_REPORT, classification_metrics
from stages.params import load_params

COMPARE = Path("models/compare")


def label(report: dict) -> str:
    return report["strategy"] + ("" if report["peft"] == "none" else f"+{report['peft']}")


def main() -> None:
    params = load_params()
    headline = read_json("metrics/eval.json")  # baseline and chosen model, already scored by evaluate
    scores: dict[str, list[float]] = defaultdict(list)
    timing = {}
    for key in ("baseline", "target"):
        report = read_json(Path("models") / key / TRAINING_REPORT)
        name = "baseline" if key == "baseline" else f"chosen:{label(report)}"
        scores[name].append(headline[key]["macro_f1"])
        timing[name] = report["wall_time_s"]

    test = load_dataset_output("data/tokenized/target")["test"].sort("length")
    # Only the matrix that params declare now: DVC leaves the folders of removed entries in place.
    for model_dir in [COMPARE / f"{s}-{seed}" for s in params.compare.strategies for seed in params.compare.seeds]:
        report = read_json(model_dir / TRAINING_REPORT)
        label_ids, predictions, _ = predict(model_dir, test, params)
        macro_f1 = classification_metrics(label_ids, predictions, params.data.labels)["macro_f1"]
        name = label(report)
        scores[name].append(macro_f1)
        timing[f"{name}@{report['seed']}"] = report["wall_time_s"]
        print(f"compare: {model_dir} macro-F1 {macro_f1:.4f}")

    baseline = scores["baseline"][0]
    margin = params.evaluate.negative_transfer_margin / 100
    rows = {}
    for name, values in scores.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        gain = statistics.mean(values) - baseline
        rows[name] = {"macro_f1": statistics.mean(values), "macro_f1_std": spread,
                      "seeds": len(values), "gain_macro_f1_points": round(100 * gain, 2),
                      "negative_transfer": gain < -max(spread, margin)}
    write_json("metrics/compare.json", rows)
    write_json("metrics/timing.json", timing)
    write_csv("metrics/plots/compare.csv", [{"strategy": k, "macro_f1": v["macro_f1"]} for k, v in rows.items()])


if __name__ == "__main__":
    main()
