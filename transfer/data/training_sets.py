"""What the training sets hold after cleaning: the labeled budget.

The budget (`data.target_train_labeled`, `data.source_train_max`) is taken from the rows clean kept,
not from the raw file: asked for 100 labeled examples, the model trains on 100 valid, de-duplicated
ones when the data has them (taken before cleaning, duplicates had left 81). Valid target train rows
past the budget become unlabeled target text; the source's are left out and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transfer.core.params import DataParams
from transfer.data.corpora import stratified_indices

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

BUDGET_KEYS = {"source": "data.source_train_max", "target": "data.target_train_labeled"}


def apply_budgets(kept: dict[str, dict[str, list[dict]]], data: DataParams, seed: int,
                  task: Task) -> dict[str, dict]:
    """Cut each domain's train set to its budget, label-stratified, in place; returns what was asked and
    what was got. Target rows past the budget go to kept["target"]["unlabeled"]."""
    budget = {}
    for domain, cap in (("source", data.source_train_max), ("target", data.target_train_labeled)):
        train = kept[domain]["train"]
        taken, rest = stratified_indices(len(train), cap, seed, task.strata(train))
        kept[domain]["train"] = [train[i] for i in taken]
        if domain == "target":
            kept[domain]["unlabeled"] = [{**task.unlabeled(train[i]), "domain": domain, "split": "unlabeled"}
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
