"""clean: repair, normalize, bound, de-duplicate, and guard against target test leakage.

Writes data/clean/<domain>/<split>.jsonl, every rejected row to data/rejected/<domain>.jsonl with
its reason, and metrics/clean.json with the counts (in = kept + rejected, per domain and split).
"""

from __future__ import annotations

from pathlib import Path

from stages.artifacts import atomic_path, read_jsonl, write_json, write_jsonl
from stages.corpora import DataError
from stages.params import load_params
from stages.text_cleaning import clean_domains, clean_report

RAW, CLEAN, REJECTED = Path("data/raw"), Path("data/clean"), Path("data/rejected")
REQUIRED = {"source": ("train",), "target": ("train", "validation", "test")}


def main() -> None:
    params = load_params()
    raw = {domain: {p.stem: read_jsonl(p) for p in sorted((RAW / domain).glob("*.jsonl"))}
           for domain in ("source", "target")}
    kept, rejected = clean_domains(raw, params.data.labels, params.clean, params.task)
    report = clean_report(raw, kept, rejected)

    for domain, splits in REQUIRED.items():
        for split in splits:
            if not kept[domain][split]:
                entry = report[domain][split]
                examples = "; ".join(f"{r['id']}: {r['reason']}"
                                     for r in [r for r in rejected[domain] if r["split"] == split][:3])
                raise DataError(f"clean: nothing left in {domain}/{split} ({entry['in']} rows in, rejected: "
                                f"{entry['reasons']}; e.g. {examples}); check data.labels and the clean.* "
                                f"bounds in params.yaml. Nothing was written.")

    if params.task == "classification":
        check_label_sets(kept)

    with atomic_path(CLEAN) as out:
        for domain, splits in kept.items():
            for split, rows in splits.items():
                write_jsonl(out / domain / f"{split}.jsonl", rows)
    with atomic_path(REJECTED) as out:
        for domain, rows in rejected.items():
            write_jsonl(out / f"{domain}.jsonl", rows)
    write_json("metrics/clean.json", report)
    for domain, splits in report.items():
        print(f"clean {domain}: " + ", ".join(f"{s} {e['kept']}/{e['in']}" for s, e in splits.items()))


def check_label_sets(kept: dict[str, dict[str, list[dict]]]) -> None:
    """Both domains must know the same labels: a class seen on one side only cannot transfer."""
    present = {domain: {r["label"] for split in ("train", "validation", "test") for r in splits.get(split, [])}
               for domain, splits in kept.items()}
    for domain, other in (("source", "target"), ("target", "source")):
        missing = sorted(present[domain] - present[other])
        if missing:
            raise DataError(f"clean: label(s) {missing} occur in the {domain} domain (data/raw/{domain}/*.jsonl) but "
                            f"never in the {other} domain; remove them from data.labels (their rows are then rejected "
                            f"as unknown_label) or give the {other} domain examples of them")


if __name__ == "__main__":
    main()
