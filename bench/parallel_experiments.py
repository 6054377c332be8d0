"""Do parallel experiments pay on this machine? Four small queued experiments with `dvc queue start -j 1`,
with `-j 2` (each torch process on every core), and with `-j 2` under TRANSFER_JOBS=2 (each on its share).

    .venv/bin/python bench/parallel_experiments.py --project /tmp/run   # a clone where `make repro` has run; writes
                                                         # bench/parallel_experiments.json

Each experiment re-runs finetune_target alone (`dvc exp run --queue finetune_target`, 2 target epochs, its
own learning rate, so that no experiment is restored from the run cache) from the cached upstream outputs.
The project's changes are committed first (queued experiments start from a commit). Wall time from
`dvc queue start` until the queue is empty; nothing asserts on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

SETTINGS = (("-j 1", 1, None), ("-j 2", 2, None), ("-j 2, TRANSFER_JOBS=2", 2, "2"))
EXPERIMENTS = 4


def dvc(project: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["dvc", *args], cwd=project, env=env, check=True, capture_output=True, text=True).stdout


def queue_is_empty(project: Path) -> bool:
    status = dvc(project, "queue", "status")
    return not any(word in status for word in ("Running", "Queued"))


def run_setting(project: Path, jobs: int, share: str | None, learning_rates: list[float]) -> dict:
    for rate in learning_rates:
        dvc(project, "exp", "run", "--queue", "finetune_target", "-S", "finetune.target_epochs=2",
            "-S", f"finetune.learning_rate={rate}")
    env = {**os.environ}
    env.pop("TRANSFER_JOBS", None)
    if share:
        env["TRANSFER_JOBS"] = share
    started = time.perf_counter()
    dvc(project, "queue", "start", "-j", str(jobs), env=env)
    time.sleep(15)
    while not queue_is_empty(project):
        time.sleep(5)
    seconds = time.perf_counter() - started
    failed = dvc(project, "queue", "status").count("Failed")
    return {"seconds": round(seconds, 1), "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench/parallel_experiments.json"))
    parser.add_argument("--repeat", type=int, default=0, choices=range(10),
                        help="a later run in the same project: other learning rates, so that DVC's run cache "
                             "restores none of the earlier runs' experiments")
    cli = parser.parse_args()
    project = cli.project.resolve()
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm",
                    "bench/parallel_experiments.py: the state the experiments start from"], cwd=project, check=False)
    results = {}
    for index, (name, jobs, share) in enumerate(SETTINGS):
        rates = [round(1.0e-4 + 1.0e-5 * (index * EXPERIMENTS + i) + 1.0e-6 * cli.repeat, 7)
                 for i in range(EXPERIMENTS)]
        results[name] = run_setting(project, jobs, share, rates)
        print(f"{name}: {EXPERIMENTS} experiments in {results[name]['seconds']:.0f} s", flush=True)
        dvc(project, "queue", "remove", "--all")
    reference = results["-j 1"]["seconds"]
    report = {"experiments": EXPERIMENTS, "repeat": cli.repeat,
              "what": "dvc exp run --queue finetune_target, 2 target epochs each",
              "cores": len(os.sched_getaffinity(0)), "machine": platform.processor() or platform.machine(),
              "settings": {name: {**r, "speedup_over_j1": round(reference / r["seconds"], 2)}
                           for name, r in results.items()}}
    cli.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
