"""What the training sets hold after cleaning: the labeled budget, and the classes they cover.

The budget (`data.target_train_labeled`, `data.source_train_max`) is taken from the rows clean kept,
not from the raw file: asked for 100 labeled examples, the model trains on 100 valid, de-duplicated
ones when the data has them (taken before cleaning, duplicates had left 81). Valid target train rows
past the budget become unlabeled target text; the source's are left out and counted.
"""

from __future__ import annotations

from collections import Counter

from stages.corpora import stratified_indices
from stages.errors import DataError
from stages.params import DataParams
from stages.tasks import unlabeled

BUDGET_KEYS = {"source": "data.source_train_max", "target": "data.target_train_labeled"}


def apply_budgets(kept: dict[str, dict[str, list[dict]]], data: DataParams, seed: int,
                  task: str) -> dict[str, dict]:
    """Cut each domain's train set to its budget, label-stratified, in place; returns what was asked and
    what was got. Target rows past the budget go to kept["target"]["unlabeled"]."""
    budget = {}
    for domain, cap in (("source", data.source_train_max), ("target", data.target_train_labeled)):
        train = kept[domain]["train"]
        labels = [row["label"] for row in train] if task == "classification" else None
        taken, rest = stratified_indices(len(train), cap, seed, labels)
        kept[domain]["train"] = [train[i] for i in taken]
        if domain == "target":
            kept[domain]["unlabeled"] = [{**unlabeled(train[i], task), "domain": domain, "split": "unlabeled"}
                                         for i in rest]
        entry = {"requested": cap or "all", "valid": len(train), "used": len(taken), "beyond_budget": len(rest)}
        if cap and len(train) < cap:
            entry["short_by"] = cap - len(train)
        budget[domain] = entry
    return budget


def budget_warnings(budget: dict[str, dict], report: dict) -> list[str]:
    """A budget the cleaned data could not fill, with the reasons rows were rejected."""
    warnings = []
    for domain, entry in budget.items():
        if "short_by" in entry:
            reasons = report[domain]["train"]["reasons"]
            why = ", ".join(f"{reason} {n}" for reason, n in reasons.items()) or "the file has fewer rows"
            warnings.append(f"{BUDGET_KEYS[domain]} asks for {entry['requested']} {domain} train examples; only "
                            f"{entry['valid']} are valid after cleaning (rejected: {why}): training on "
                            f"{entry['used']}")
    return warnings


def check_classes(kept: dict[str, dict[str, list[dict]]], labels: list[str]) -> list[str]:
    """Stop on training sets no classifier can learn from; return warnings for the gaps transfer may fill.

    Stops: a train set with fewer than two classes (nothing to tell apart), or a declared class that no
    train set of either domain has (nothing can learn it). Warns: a class one domain's train set lacks (the
    other domain can teach it, e.g. sequential), a class absent from the target test set (its F1 is 0
    and pulls macro-F1 down).
    """
    trains = {domain: Counter(row["label"] for row in splits["train"]) for domain, splits in kept.items()}
    for domain, counts in trains.items():
        if len(counts) < 2:
            found = ", ".join(f"{label} ({n})" for label, n in counts.items()) or "no rows"
            raise DataError(f"clean: the {domain} train set has {len(counts)} class after cleaning ({found}); a "
                            f"classifier needs at least two: check {BUDGET_KEYS[domain]}, data.labels and the label "
                            f"column of the {domain} data (metrics/clean.json lists the labels it rejected)")
    untaught = [label for label in labels if not any(label in counts for counts in trains.values())]
    if untaught:
        raise DataError(f"clean: data.labels lists {untaught}, but no train example of either domain has that "
                        f"label after cleaning; remove it from data.labels or add labeled examples")
    warnings = []
    for domain, other in (("source", "target"), ("target", "source")):
        missing = [label for label in labels if label not in trains[domain] and label in trains[other]]
        if missing:
            warnings.append(f"the {domain} train set has no example of {missing}: only the {other} domain's "
                            f"labels teach that class")
    test = Counter(row["label"] for row in kept["target"].get("test", []))
    absent = [label for label in labels if label not in test]
    if absent:
        warnings.append(f"the target test set has no example of {absent}: that class scores F1 0, which lowers "
                        f"macro-F1")
    return warnings
