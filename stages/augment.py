"""augment: EDA augmentation and rebalancing of the scarce labeled target train set.

Copies every other split unchanged to data/augmented so tokenize reads one folder; writes
metrics/augment.json (class counts before/after) and the class-count and text-length plots.
Tasks without classes (QA, translation) pass through unchanged (word edits would move answer offsets
and break pairs): the plots then count rows per split.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transfer.core.artifacts import atomic_path, read_jsonl, write_csv, write_json, write_jsonl
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.data.augmentation import (
    augment_rows,
    class_balance,
    label_counts,
    length_histogram,
    load_synonyms,
    rebalance,
    split_sizes,
)
from transfer.tasks.registry import task_for

CLEAN, AUGMENTED, PLOTS = Path("data/clean"), Path("data/augmented"), Path("metrics/plots")


def read_splits(folder: Path) -> dict[tuple[str, str], list[dict]]:
    return {(p.parent.name, p.stem): read_jsonl(p) for p in sorted(folder.glob("*/*.jsonl"))}


def main() -> None:
    params = load_params()
    task = task_for(params)
    if "augment" in task.skipped_stages:
        with atomic_path(AUGMENTED) as out:
            shutil.copytree(CLEAN, out)
        splits = read_splits(AUGMENTED)
        write_json("metrics/augment.json", {"applicable": False, "task": task.name,
                                            "rows": {f"{d}/{s}": len(rows) for (d, s), rows in splits.items()}})
        write_csv(PLOTS / "class_counts.csv", split_sizes(splits))
        write_csv(PLOTS / "text_lengths.csv", length_histogram(splits, task))
        print(f"augment: task {task.name}: {task.skipped_stages['augment']}")
        return

    train = read_jsonl(CLEAN / "target" / "train.jsonl")
    synonyms = load_synonyms(params, [r["text"] for r in train])
    augmented = augment_rows(train, params.augment, params.seed, synonyms)
    balanced, left_out = rebalance(augmented, params.augment.rebalance, params.seed)

    with atomic_path(AUGMENTED) as out:
        shutil.copytree(CLEAN, out)
        write_jsonl(out / "target" / "train.jsonl", balanced)
        if left_out:
            write_jsonl(out / "target" / "left_out_by_undersampling.jsonl", left_out)
        splits = read_splits(out)

    report = {"target_train": {
        "rows_before": len(train), "rows_after": len(balanced), "before": label_counts(train),
        "after_augmentation": label_counts(augmented), "after_rebalance": label_counts(balanced),
        "left_out_by_undersampling": len(left_out), "words_with_synonyms": len(synonyms)}}
    write_json("metrics/augment.json", report)
    write_csv(PLOTS / "class_counts.csv", class_balance(splits))
    write_csv(PLOTS / "text_lengths.csv", length_histogram(splits, task))
    print(f"augment: target train {len(train)} -> {len(balanced)} rows; {report['target_train']['after_rebalance']}")


if __name__ == "__main__":
    run_stage(main)
