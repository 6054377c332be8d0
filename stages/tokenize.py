"""tokenize: the base model's tokenizer over every labeled split, saved as Arrow.

No padding here: batches are padded dynamically, and the `length` column lets Trainer group
similar lengths (padding everything to max_length wastes ~3/4 of the compute on tweets).
Labels become class ids of a ClassLabel feature, so the names travel with the data (-1: unlabeled);
`origin_id` names the original row of an augmented copy (label budgets keep copies with their origin).

QA: train and validation become windows over the context labeled with the answer's token span
(validation scores the loss that picks the best epoch); test becomes prediction windows plus
`test_examples`, the records the predicted spans are mapped back to. Translation: source-side
inputs with the target side as `labels`. `origin_id` is then the example id (a QA example may give
several windows).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from stages.artifacts import atomic_path, read_jsonl
from stages.errors import run_stage
from stages.modeling import load_tokenizer, resolve_model
from stages.params import Params, load_params

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


QA_FEATURES = datasets.Features({
    "id": datasets.Value("string"), "question": datasets.Value("string"), "context": datasets.Value("string"),
    "answers": {"text": datasets.List(datasets.Value("string")),
                "answer_start": datasets.List(datasets.Value("int64"))}})


def tokenize_qa(rows: list[dict], tokenizer, params: Params, split: str) -> dict[str, datasets.Dataset]:
    from stages.qa import encode_qa

    examples = datasets.Dataset.from_list([{k: r[k] for k in QA_FEATURES} for r in rows], features=QA_FEATURES)
    windows = encode_qa(examples, tokenizer, params.tokenize.max_length, params.qa.doc_stride,
                        for_training=split != "test")
    windows = windows.add_column("origin_id", windows["example_id"])
    return {split: windows, "test_examples": examples} if split == "test" else {split: windows}


def tokenize_pairs(rows: list[dict], tokenizer, params: Params) -> datasets.Dataset:
    from stages.translation import encode_pairs

    config = params.translation
    pairs = datasets.Dataset.from_dict({"id": [r["id"] for r in rows], "origin_id": [r["id"] for r in rows],
                                        "source_text": [r["source_text"] for r in rows],
                                        "target_text": [r["target_text"] for r in rows]})

    def encode(batch: dict) -> dict:
        encoded = encode_pairs(batch, tokenizer, config.max_source_length, config.max_target_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return pairs.map(encode, batched=True, batch_size=1000, desc="tokenize pairs")


def tokenize_split(rows: list[dict], tokenizer, params: Params, split: str) -> dict[str, datasets.Dataset]:
    if params.task == "qa":
        return tokenize_qa(rows, tokenizer, params, split)
    if params.task == "translation":
        return {split: tokenize_pairs(rows, tokenizer, params)}
    return {split: tokenize_rows(rows, tokenizer, params.data.labels, params.tokenize.max_length)}


def main() -> None:
    params = load_params()
    tokenizer = load_tokenizer(resolve_model(params.model.name), params)
    # Unlabeled target text only feeds DANN's domain classifier (classification); pretrain_domain reads it raw.
    wanted = SPLITS if params.task == "classification" else SPLITS[:3]
    with atomic_path(TOKENIZED) as out:
        for domain in ("source", "target"):
            splits = {name: dataset for split in wanted if (AUGMENTED / domain / f"{split}.jsonl").exists()
                      for name, dataset in tokenize_split(read_jsonl(AUGMENTED / domain / f"{split}.jsonl"),
                                                          tokenizer, params, split).items()}
            datasets.DatasetDict(splits).save_to_disk(str(out / domain))
            truncated = {s: sum(n >= params.tokenize.max_length for n in d["length"]) if "length" in d.column_names
                         else 0 for s, d in splits.items()}
            print(f"tokenize {domain}: " + ", ".join(f"{s}={len(d)} ({truncated[s]} truncated)"
                                                     for s, d in splits.items()))


if __name__ == "__main__":
    run_stage(main)
