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
    kept, rejected = clean_domains(raw, params.data.labels, params.clean)
    report = clean_report(raw, kept, rejected)

    for domain, splits in REQUIRED.items():
        for split in splits:
            if not kept[domain][split]:
                reasons = report[domain][split]["reasons"]
                raise DataError(f"clean: nothing left in {domain}/{split} ({report[domain][split]['in']} rows in, "
                                f"rejected: {reasons}); see data/rejected/{domain}.jsonl — check data.labels "
                                f"and the clean.* bounds in params.yaml")

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


if __name__ == "__main__":
    main()
