"""ingest: load both domains into canonical rows and fix the splits.

Writes data/raw/{source,target}/{train,validation,test}.jsonl and data/raw/target/unlabeled.jsonl:
the target train set is cut to `data.target_train_labeled` labeled rows (reviews, questions or
sentence pairs, by task) to simulate scarcity; of the rest only the text pretrain_domain may adapt on
is kept (the text, the QA context, the source sentence), without labels or answers.
"""

from __future__ import annotations

from pathlib import Path

from stages.artifacts import atomic_path, write_json, write_jsonl
from stages.corpora import load_corpus, stratified_take
from stages.params import load_params
from stages.tasks import unlabeled

RAW = Path("data/raw")


def main() -> None:
    params = load_params()
    data = params.data
    counts: dict[str, dict[str, int]] = {}
    with atomic_path(RAW) as out:
        for domain, spec in (("source", data.source), ("target", data.target)):
            splits = load_corpus(spec, params.seed, data.validation_fraction, data.test_fraction, params.task)
            cap = data.source_train_max if domain == "source" else data.target_train_labeled
            labeled, rest = _cap(splits["train"], cap, params.seed)
            splits["train"] = labeled
            if domain == "target":
                splits["unlabeled"] = [unlabeled(row, params.task) for row in rest]
            for split, rows in splits.items():
                write_jsonl(out / domain / f"{split}.jsonl", ({**r, "domain": domain, "split": split} for r in rows))
            counts[domain] = {split: len(rows) for split, rows in splits.items()}
            if domain == "source" and cap:
                counts[domain]["train_dropped_by_source_train_max"] = len(rest)
            print(f"ingest {domain}: " + ", ".join(f"{k}={v}" for k, v in counts[domain].items()))
    write_json("metrics/ingest.json", counts)


def _cap(rows: list[dict], cap: int, seed: int) -> tuple[list[dict], list[dict]]:
    import pandas as pd

    if not cap or cap >= len(rows):
        return rows, []
    taken, rest = stratified_take(pd.DataFrame(rows), cap, seed)
    return taken.to_dict("records"), rest.to_dict("records")


if __name__ == "__main__":
    main()
