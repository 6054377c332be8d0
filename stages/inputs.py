"""inputs: fingerprint the data that params.yaml points at, so that data is a DVC dependency by content.

Writes data/inputs.json (stages/data_inputs.py says what identifies each kind of corpus). DVC cannot
see a file that params only names, so this stage runs at every `dvc repro` (`always_changed`): it
hashes the files, prints what changed since the last run, and rewrites the fingerprint only when it
changed. ingest depends on data/inputs.json: it re-runs when, and only when, the data's content did.
"""

from __future__ import annotations

from pathlib import Path

from transfer.core.artifacts import read_json, write_json
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.data.data_inputs import describe_changes, fingerprint_inputs

INPUTS = Path("data/inputs.json")


def main() -> None:
    params = load_params()
    fingerprint = fingerprint_inputs(params.data.source, params.data.target)
    previous = read_json(INPUTS) if INPUTS.exists() else None
    if previous == fingerprint:
        print("inputs: the data is unchanged")
        return
    for change in describe_changes(previous or {}, fingerprint):
        print(f"inputs: {change}")
    write_json(INPUTS, fingerprint)


if __name__ == "__main__":
    run_stage(main)
