"""tokenize: the base model's tokenizer over every labeled split, saved as Arrow.

No padding here: batches are padded dynamically, and the `length` column lets Trainer group
similar lengths (padding everything to max_length wastes ~3/4 of the compute on tweets). What a
split becomes is the task's (`Task.tokenize`): classification rows with class ids, QA windows over the
context, translation source inputs with the target side as labels.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from transfer.core.artifacts import atomic_path, read_jsonl
from transfer.core.modeling import load_tokenizer, resolve_model
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.registry import task_for

AUGMENTED, TOKENIZED = Path("data/augmented"), Path("data/tokenized")


def main() -> None:
    params = load_params()
    task = task_for(params)
    tokenizer = load_tokenizer(resolve_model(params.model.name), params)
    with atomic_path(TOKENIZED) as out:
        for domain in ("source", "target"):
            splits = {name: dataset for split in task.tokenized_splits
                      if (AUGMENTED / domain / f"{split}.jsonl").exists()
                      for name, dataset in task.tokenize(read_jsonl(AUGMENTED / domain / f"{split}.jsonl"),
                                                         tokenizer, params, split).items()}
            datasets.DatasetDict(splits).save_to_disk(str(out / domain))
            truncated = {s: sum(n >= params.tokenize.max_length for n in d["length"]) if "length" in d.column_names
                         else 0 for s, d in splits.items()}
            print(f"tokenize {domain}: " + ", ".join(f"{s}={len(d)} ({truncated[s]} truncated)"
                                                     for s, d in splits.items()))


if __name__ == "__main__":
    run_stage(main)
