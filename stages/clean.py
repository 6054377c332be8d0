"""clean: repair, normalize, bound, de-duplicate, guard against target test leakage, then take the budget.

Writes data/clean/<domain>/<split>.jsonl, every rejected row to data/rejected/<domain>.jsonl with
its reason, and metrics/clean.json: the counts (in = kept + rejected (+ beyond_budget), per domain and
split), the labels rejected and matched, the labeled budget asked for and got, and warnings.
The labeled budget is taken from the valid rows: target train rows past it become unlabeled text.
"""

from __future__ import annotations

from pathlib import Path

from transfer.core.artifacts import atomic_path, read_jsonl, write_json, write_jsonl
from transfer.core.errors import DataError
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.data.cleaning import clean_domains, clean_report, label_hint, label_warnings, unknown_labels
from transfer.data.training_sets import apply_budgets, budget_warnings
from transfer.tasks.registry import task_for

RAW, CLEAN, REJECTED = Path("data/raw"), Path("data/clean"), Path("data/rejected")
REQUIRED = {"source": ("train",), "target": ("train", "validation", "test")}


def main() -> None:
    params = load_params()
    task = task_for(params)
    raw = {domain: {p.stem: read_jsonl(p) for p in sorted((RAW / domain).glob("*.jsonl"))}
           for domain in ("source", "target")}
    kept, rejected = clean_domains(raw, params.data.labels, params.clean, task)
    budget = apply_budgets(kept, params.data, params.seed, task)
    report = clean_report(raw, kept, rejected, params.data.labels,
                          {domain: entry["beyond_budget"] for domain, entry in budget.items()})

    for domain, splits in REQUIRED.items():
        for split in splits:
            if not kept[domain][split]:
                entry = report[domain][split]
                examples = "; ".join(f"{r['id']}: {r['reason']}"
                                     for r in [r for r in rejected[domain] if r["split"] == split][:3])
                seen = label_hint(params, domain, entry.get("unknown_labels", {}))
                raise DataError(f"clean: nothing left in {domain}/{split} ({entry['in']} rows in, rejected: "
                                f"{entry['reasons']}; e.g. {examples}){seen}; check data.labels and the clean.* "
                                f"bounds in params.yaml. Nothing was written.")

    warnings = budget_warnings(budget, report) + label_warnings(params, report)
    warnings += task.check_training_sets(kept, params.data.labels)

    with atomic_path(CLEAN) as out:
        for domain, splits in kept.items():
            for split, rows in splits.items():
                write_jsonl(out / domain / f"{split}.jsonl", rows)
    with atomic_path(REJECTED) as out:
        for domain, rows in rejected.items():
            write_jsonl(out / f"{domain}.jsonl", rows)
    write_json("metrics/clean.json", {**report, "labeled_budget": budget, "warnings": warnings})
    for domain, splits in report.items():
        print(f"clean {domain}: kept/in " + ", ".join(
            f"{s} {e['kept']}/{e['in']}" + (f" ({e['beyond_budget']} valid past the budget)" if e.get("beyond_budget")
                                            else "") for s, e in splits.items()))
        if unknown := unknown_labels(splits):
            print(f"clean {domain}: rejected as unknown_label (not in data.labels): "
                  + ", ".join(f"{label!r} ({n})" for label, n in list(unknown.items())[:10]))
    for warning in warnings:
        print(f"clean: WARNING: {warning}")


if __name__ == "__main__":
    run_stage(main)
