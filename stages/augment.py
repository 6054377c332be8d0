"""augment: EDA augmentation and rebalancing of the scarce labeled target train set.

Copies every other split unchanged to data/augmented so tokenize reads one folder; writes
metrics/augment.json (class counts before/after) and the class-count and text-length plots.
QA and translation pass through unchanged (word edits would move answer offsets and break
pairs; there are no classes): the plots then count rows per split.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from stages.artifacts import atomic_path, read_jsonl, write_csv, write_json, write_jsonl
from stages.augmentation import Synonyms, augment_rows, embedding_synonyms, label_counts, rebalance
from stages.errors import run_stage
from stages.params import Params, load_params
from stages.tasks import domain_text

CLEAN, AUGMENTED, PLOTS = Path("data/clean"), Path("data/augmented"), Path("metrics/plots")
LENGTH_BIN = 10  # words


def load_synonyms(params: Params, texts: list[str]) -> Synonyms:
    """Neighbour table for the words of `texts`, only when an operation needs it."""
    config = params.augment
    if config.n_aug == 0 or not {"synonym", "insert"} & set(config.operations):
        return {}
    from transformers import AutoModel

    from stages.modeling import load_kwargs, load_tokenizer, resolve_model

    path = resolve_model(params.model.name)
    embeddings = AutoModel.from_pretrained(path, **load_kwargs(params, path)).get_input_embeddings().weight
    vocab = load_tokenizer(path, params).get_vocab()
    return embedding_synonyms(texts, embeddings, vocab, config.synonym_min_similarity, config.synonym_top_k)


def write_length_plots(splits: dict[tuple[str, str], list[dict]], task: str) -> None:
    """A histogram of text lengths per domain, as shares: the source has ~40x the target's texts."""
    rows = []
    for domain in ("source", "target"):
        lengths = Counter(len(domain_text(row, task).split()) // LENGTH_BIN * LENGTH_BIN
                          for (d, _), members in splits.items() if d == domain for row in members)
        total = sum(lengths.values())
        rows += [{"domain": domain, "words": b, "words_to": b + LENGTH_BIN, "texts": lengths[b],
                  "percent": round(100 * lengths[b] / total, 2)} for b in range(0, max(lengths) + 1, LENGTH_BIN)]
    write_csv(PLOTS / "text_lengths.csv", rows)


def pass_through(params: Params) -> None:
    with atomic_path(AUGMENTED) as out:
        shutil.copytree(CLEAN, out)
    splits = {(p.parent.name, p.stem): read_jsonl(p) for p in sorted(AUGMENTED.glob("*/*.jsonl"))}
    write_json("metrics/augment.json", {"applicable": False, "task": params.task,
                                        "rows": {f"{d}/{s}": len(rows) for (d, s), rows in splits.items()}})
    totals = Counter()
    for (domain, _), rows in splits.items():
        totals[domain] += len(rows)
    write_csv(PLOTS / "class_counts.csv",
              [{"group": f"{d}/{s}", "count": len(rows), "percent": round(100 * len(rows) / totals[d], 2)}
               for (d, s), rows in splits.items()])
    write_length_plots(splits, params.task)
    print(f"augment: task {params.task}: data passed through unchanged (no EDA, no classes to rebalance)")


def main() -> None:
    params = load_params()
    if params.task != "classification":
        pass_through(params)
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
        splits = {(p.parent.name, p.stem): read_jsonl(p) for p in sorted(out.glob("*/*.jsonl"))}

    report = {"target_train": {
        "rows_before": len(train), "rows_after": len(balanced), "before": label_counts(train),
        "after_augmentation": label_counts(augmented), "after_rebalance": label_counts(balanced),
        "left_out_by_undersampling": len(left_out), "words_with_synonyms": len(synonyms)}}
    write_json("metrics/augment.json", report)
    # Shares within each domain/split: the source's thousands would flatten the target's tens into slivers.
    write_csv(PLOTS / "class_counts.csv",
              [{"group": f"{domain}/{split}: {label}", "count": n, "percent": round(100 * n / len(rows), 2)}
               for (domain, split), rows in splits.items() if split != "unlabeled"
               for label, n in label_counts(rows).items()])
    write_length_plots(splits, params.task)
    print(f"augment: target train {len(train)} -> {len(balanced)} rows; {report['target_train']['after_rebalance']}")


if __name__ == "__main__":
    run_stage(main)
