"""finetune_source: the source phase, trained once, from models/domain -> models/source.

The first phase of sequential (and the whole of source_only) trains on the labeled source data and reads
no target data. Trained here once, it is the starting point of the headline model, compare's
source_only, every label-budget point and auto's folds, so a change of a target-side param (labels,
learning_rate, target_epochs, a lever) never retrains it. It is trained whatever finetune.strategy says
(about a minute for the default), so that switching strategies and back finds it cached.
"""

from __future__ import annotations

import time
from pathlib import Path

from transfer.core.artifacts import atomic_path, load_dataset_output, write_json
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.registry import task_for
from transfer.training.checkpoints import resumable
from transfer.training.strategies import train_source_model

SOURCE_DATA, DOMAIN, SOURCE = Path("data/tokenized/source"), Path("models/domain"), Path("models/source")
TIMING = Path("metrics/source_timing.json")


def main() -> None:
    params = load_params()
    task = task_for(params)
    source = load_dataset_output(SOURCE_DATA)
    print(f"finetune_source: {len(source['train'])} source train examples, seed={params.seed}, from {DOMAIN} -> "
          f"{SOURCE}")
    started = time.perf_counter()
    run = resumable(params, SOURCE, {"init": str(DOMAIN)}, [SOURCE_DATA, DOMAIN])
    with atomic_path(SOURCE) as out:
        train_source_model(params, task, str(DOMAIN), source, out, run)
    run.finish()
    # Outside models/source: a re-run that trains the same weights publishes the same bytes, so what starts
    # from it stays cached. compare copies it into metrics/timing.json.
    write_json(TIMING, {"source phase": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    run_stage(main)
