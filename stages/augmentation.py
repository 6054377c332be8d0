"""Label-preserving augmentation (EDA-style word edits) and class rebalancing.

Only the labeled target train split is touched: augmenting validation or test would grade the
model on its own edits. Every new row records the row it came from in `origin_id`.
"""

from __future__ import annotations

import random
from collections import Counter

from stages.params import AugmentParams


def eda(text: str, operation: str, alpha: float, rng: random.Random) -> str:
    """One EDA edit (Wei & Zou 2019) touching about alpha of the words; synonyms come in issue #3."""
    words = text.split()
    if len(words) < 2:
        return text
    n = max(1, round(alpha * len(words)))
    for _ in range(n):
        if operation == "swap":
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
        elif operation == "delete" and len(words) > 1:
            del words[rng.randrange(len(words))]
        elif operation == "insert":
            words.insert(rng.randrange(len(words) + 1), rng.choice(words))
    return " ".join(words)


def augment_rows(rows: list[dict], params: AugmentParams, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = list(rows)
    for row in rows:
        for k in range(params.n_aug):
            operation = params.operations[k % len(params.operations)]
            out.append({**row, "id": f"{row['id']}-aug{k}", "text": eda(row["text"], operation, params.alpha, rng),
                        "origin_id": row["id"], "augmentation": operation})
    return out


def rebalance(rows: list[dict], mode: str, seed: int) -> tuple[list[dict], list[dict]]:
    """(rows to train on, rows left out by undersampling). class_weights is applied in the loss."""
    if mode not in ("oversample", "undersample"):
        return rows, []
    rng = random.Random(seed)
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    sizes = [len(v) for v in by_label.values()]
    target = max(sizes) if mode == "oversample" else min(sizes)
    kept, left_out = [], []
    for label_rows in by_label.values():
        if mode == "oversample":
            extra = [rng.choice(label_rows) for _ in range(target - len(label_rows))]
            kept += label_rows + [{**r, "id": f"{r['id']}-dup{i}", "origin_id": r["id"], "augmentation": "oversample"}
                                  for i, r in enumerate(extra)]
        else:
            shuffled = rng.sample(label_rows, len(label_rows))
            kept += shuffled[:target]
            left_out += shuffled[target:]
    return kept, left_out


def label_counts(rows: list[dict]) -> dict[str, int]:
    return dict(sorted(Counter(r["label"] for r in rows).items()))
