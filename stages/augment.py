"""augment: EDA augmentation and rebalancing of the scarce labeled target train set.

Copies every other split unchanged to data/augmented so tokenize reads one folder; writes
metrics/augment.json (class counts before/after) and plots/class_counts.csv.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stages.artifacts import atomic_path, read_jsonl, write_csv, write_json, write_jsonl
from stages.augmentation import augment_rows, label_counts, rebalance
from stages.params import load_params

CLEAN, AUGMENTED = Path("data/clean"), Path("data/augmented")


def main() -> None:
    params = load_params()
    train = read_jsonl(CLEAN / "target" / "train.jsonl")
    augmented = augment_rows(train, params.augment, params.seed)
    balanced, left_out = rebalance(augmented, params.augment.rebalance, params.seed)

    with atomic_path(AUGMENTED) as out:
        shutil.copytree(CLEAN, out)
        write_jsonl(out / "target" / "train.jsonl", balanced)
        if left_out:
            write_jsonl(out / "target" / "left_out_by_undersampling.jsonl", left_out)

    report = {"target_train": {"before": label_counts(train), "after_augmentation": label_counts(augmented),
                               "after_rebalance": label_counts(balanced), "left_out_by_undersampling": len(left_out),
                               "rows_before": len(train), "rows_after": len(balanced)}}
    write_json("metrics/augment.json", report)
    write_csv("metrics/plots/class_counts.csv",
              [{"stage": stage, "label": label, "count": n}
               for stage in ("before", "after_rebalance") for label, n in report["target_train"][stage].items()])
    print(f"augment: target train {len(train)} -> {len(balanced)} rows; {report['target_train']['after_rebalance']}")


if __name__ == "__main__":
    main()
