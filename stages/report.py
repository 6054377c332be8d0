"""Print the run's headline numbers as a short table (what `make repro` ends with).

`dvc metrics show` puts every metrics file into one very wide table; this reads the few numbers
a user looks at first. Not a stage: it only reads metrics/.
"""

from __future__ import annotations

from pathlib import Path

from stages.artifacts import read_json
from stages.tasks import METRIC_NAMES, primary_metric

METRICS = Path("metrics")


def main() -> None:
    if not (METRICS / "eval.json").exists():
        raise SystemExit("no metrics/eval.json yet: run `dvc repro` first")
    evaluation = read_json(METRICS / "eval.json")
    task = evaluation.get("task", "classification")
    metric = primary_metric(task)
    name_of = METRIC_NAMES[metric]
    print(f"\nTask {task}. Target test split: {evaluation['test_examples']} examples; chosen strategy: "
          f"{evaluation['strategy']} (domain pretraining {'on' if evaluation['pretrain_domain'] else 'off'})")
    clean = read_json(METRICS / "clean.json") if (METRICS / "clean.json").exists() else {}
    budget = clean.get("labeled_budget", {}).get("target")
    if budget:
        print(f"Labeled target train examples: {budget['used']} (data.target_train_labeled: {budget['requested']}; "
              f"{budget['valid']} valid after cleaning)")
    for warning in clean.get("warnings", []):
        print(f"WARNING (clean): {warning}")
    print(f"\n{'model':<24}{name_of:>10}{'gain (pts)':>12}  negative transfer")
    rows = read_json(METRICS / "compare.json") if (METRICS / "compare.json").exists() else {}
    for name, row in rows.items():
        spread = f" ± {row[f'{metric}_std']:.3f}" if row["seeds"] > 1 else ""
        flag = "YES" if row["negative_transfer"] else ""
        print(f"{name:<24}{row[metric]:>10.3f}{row[f'gain_{metric}_points']:>+12.2f}  {flag}{spread}")
    if (METRICS / "label_budget.json").exists():
        budget = read_json(METRICS / "label_budget.json")
        curve = "  ".join(f"{n}: {budget['curve']['target_only'][n]:.3f} / {budget['curve']['transfer'][n]:.3f}"
                          for n in sorted(budget["curve"]["target_only"], key=int))
        print(f"\nLabel budget (labels: target_only / {budget['strategy']} {name_of})  {curve}")
        if "dropped_note" in budget:
            print(f"  {budget['dropped_note']}")
        if budget["labels_saved"] is None:
            print(f"  {budget['note']}")
        else:
            bound = " at least" if budget["labels_saved_is_lower_bound"] else ""
            print(f"  {budget['strategy']} matches target_only's {budget['full_budget']}-label {name_of} with "
                  f"{budget['transfer_labels_needed']:.0f} labels:{bound} {budget['labels_saved']:.0f} labels saved")
    pretrain = read_json(METRICS / "pretrain.json")
    if pretrain.get("enabled"):
        print(f"\nTAPT held-out MLM loss: {pretrain['before']['loss']:.3f} -> {pretrain['after']['loss']:.3f}")
    distill = read_json(METRICS / "distill.json") if (METRICS / "distill.json").exists() else {}
    if distill.get("applicable", True) and distill:
        print(f"Distilled student: {distill['student']['layers']} layers, {distill['size_ratio']:.0%} of the "
              f"parameters, macro-F1 {distill['student']['macro_f1']:.3f} ({distill['quality_retained']:.0%} kept)")
    if (METRICS / "domain.json").exists():
        domain = read_json(METRICS / "domain.json")
        shift = "  ".join(f"{name}: PAD {e['proxy_a_distance']:.2f} MMD² {e['mmd2']:.3f}"
                          for name, e in domain["embeddings"].items())
        print(f"Domain shift ({domain['sample_per_domain']} held-out texts a domain)  {shift}")
        print(f"  vocabulary overlap {domain['text']['vocabulary_overlap']:.2f}, JS divergence "
              f"{domain['text']['js_divergence']:.2f}, target words split by the tokenizer "
              f"{domain['tokenizer']['target']['split_word_rate']:.0%}")
    print("\nMore: dvc metrics show metrics/eval.json | dvc plots show | README 'What you get'")


if __name__ == "__main__":
    main()
