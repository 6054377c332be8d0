"""ingest: load both domains into canonical rows and fix the splits.

Writes data/raw/{source,target}/{train,validation,test}.jsonl: every row of the data, in canonical
form (classification {id, text, label}; QA {id, question, context, answers}; translation {id,
source_text, target_text}), with validation/test carved out with the seed where a corpus has none.
The labeled budget (`data.target_train_labeled`, `data.source_train_max`) is clean's: it counts
valid rows. The data is read only if it is still what the `inputs` stage fingerprinted.
"""

from __future__ import annotations

from pathlib import Path

from transfer.core.artifacts import atomic_path, read_json, write_json, write_jsonl
from transfer.core.errors import DataError
from transfer.core.params import HubDataset, load_params
from transfer.core.stage_entry import run_stage
from transfer.data.corpora import load_corpus
from transfer.data.data_inputs import describe_changes, fingerprint_inputs
from transfer.tasks.registry import task_for

RAW, INPUTS = Path("data/raw"), Path("data/inputs.json")


def main() -> None:
    params = load_params()
    task = task_for(params)
    data = params.data
    fingerprint = check_inputs(params)
    counts: dict[str, dict[str, int]] = {}
    with atomic_path(RAW) as out:
        for domain, spec in (("source", data.source), ("target", data.target)):
            if isinstance(spec, HubDataset) and "commit" in fingerprint[domain]:
                spec = spec.model_copy(update={"revision": fingerprint[domain]["commit"]})  # what was hashed
            splits = load_corpus(spec, params.seed, data.validation_fraction, data.test_fraction, task)
            for split, rows in splits.items():
                write_jsonl(out / domain / f"{split}.jsonl", ({**r, "domain": domain, "split": split} for r in rows))
            counts[domain] = {split: len(rows) for split, rows in splits.items()}
            print(f"ingest {domain}: " + ", ".join(f"{k}={v}" for k, v in counts[domain].items()))
    write_json("metrics/ingest.json", counts)


def check_inputs(params) -> dict:
    """The data's fingerprint now, which must be the one `inputs` recorded (when run by DVC): the run's
    outputs are then keyed by exactly the content they were built from."""
    fingerprint = fingerprint_inputs(params.data.source, params.data.target)
    if INPUTS.exists():
        changes = describe_changes(read_json(INPUTS), fingerprint)
        if changes:
            raise DataError(f"ingest: the data changed after the `inputs` stage fingerprinted it "
                            f"({'; '.join(changes)}); run `dvc repro` again")
    return fingerprint


if __name__ == "__main__":
    run_stage(main)
