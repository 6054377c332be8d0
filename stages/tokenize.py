"""tokenize: the base model's tokenizer over every labeled split, saved as Arrow.

No padding here: batches are padded dynamically, and the `length` column lets Trainer group
similar lengths (padding everything to max_length wastes ~3/4 of the compute on tweets).
Labels become class ids of a ClassLabel feature, so the names travel with the data (-1: unlabeled);
`origin_id` names the original row of an augmented copy (label budgets keep copies with their origin).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from stages.artifacts import atomic_path, read_jsonl
from stages.modeling import load_tokenizer, resolve_model
from stages.params import load_params

AUGMENTED, TOKENIZED = Path("data/augmented"), Path("data/tokenized")
# Unlabeled target text (label -1) feeds the domain classifier of DANN.
SPLITS = ("train", "validation", "test", "unlabeled")


def tokenize_rows(rows: list[dict], tokenizer, label_names: list[str], max_length: int) -> datasets.Dataset:
    features = datasets.Features({"id": datasets.Value("string"), "origin_id": datasets.Value("string"),
                                  "text": datasets.Value("string"), "label": datasets.ClassLabel(names=label_names)})
    label_ids = [-1 if r["label"] is None else label_names.index(r["label"]) for r in rows]
    dataset = datasets.Dataset.from_dict(
        {"id": [r["id"] for r in rows], "origin_id": [r.get("origin_id") or r["id"] for r in rows],
         "text": [r["text"] for r in rows], "label": label_ids}, features=features)

    def encode(batch: dict) -> dict:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return dataset.map(encode, batched=True, batch_size=1000, remove_columns=["text"], desc="tokenize")


def main() -> None:
    params = load_params()
    tokenizer = load_tokenizer(resolve_model(params.model.name), params)
    with atomic_path(TOKENIZED) as out:
        for domain in ("source", "target"):
            splits = {split: tokenize_rows(read_jsonl(AUGMENTED / domain / f"{split}.jsonl"), tokenizer,
                                           params.data.labels, params.tokenize.max_length)
                      for split in SPLITS if (AUGMENTED / domain / f"{split}.jsonl").exists()}
            datasets.DatasetDict(splits).save_to_disk(str(out / domain))
            truncated = {s: sum(n >= params.tokenize.max_length for n in d["length"]) for s, d in splits.items()}
            print(f"tokenize {domain}: " + ", ".join(f"{s}={len(d)} ({truncated[s]} truncated)"
                                                     for s, d in splits.items()))


if __name__ == "__main__":
    main()
