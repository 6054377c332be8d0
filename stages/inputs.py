"""inputs: fingerprint the data and the model that params.yaml points at, so they are DVC dependencies by content.

Writes data/inputs.json (stages/data_inputs.py says what identifies each kind of corpus). DVC cannot
see a file that params only names, so this stage runs at every `dvc repro` (`always_changed`): it
hashes the files, prints what changed since the last run, and rewrites the fingerprint only when it
changed. ingest depends on data/inputs.json: it re-runs when, and only when, the data's content did.
Likewise data/model_input.json for model.name (a GGUF file by its hash), which base_model depends on.
"""

from __future__ import annotations

from pathlib import Path

from transfer.core.artifacts import read_json, write_json
from transfer.core.modeling import model_fingerprint
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.data.data_inputs import describe_changes, fingerprint_inputs

INPUTS, MODEL_INPUT = Path("data/inputs.json"), Path("data/model_input.json")


def main() -> None:
    params = load_params()
    model = model_fingerprint(params.model.name)
    if not MODEL_INPUT.exists() or read_json(MODEL_INPUT) != model:
        if MODEL_INPUT.exists():
            print(f"inputs: the model changed: {model}")
        write_json(MODEL_INPUT, model)
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
