"""Each parallel experiment's share of the cores.

`dvc queue start -j 2` runs two queued experiments at once, and each of their torch processes starts
one thread per core: on 2 cores, four threads fight for two cores, and both experiments run slower than
one after the other would. Started as `TRANSFER_JOBS=2 dvc queue start -j 2`, every stage of each
experiment takes cores / 2 threads (cores / (2 x processes) under torchrun). Unset, torch's own default
stands. An environment variable and not a param: how many experiments share the machine is a fact of
the run, not of the experiment, and must not change any stage's cache key.
"""

from __future__ import annotations

import os
import sys

from transfer.core.errors import ParamsError

JOBS_VARIABLE = "TRANSFER_JOBS"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share_of_cores(jobs: str | None, cores: int, processes_per_job: int = 1) -> int | None:
    """Threads for one process of one of `jobs` experiments run at once; None when `jobs` is unset."""
    if jobs is None or jobs.strip() == "":
        return None
    try:
        count = int(jobs)
    except ValueError:
        count = 0
    if count < 1:
        raise ParamsError(f"{JOBS_VARIABLE}={jobs!r}: expected how many experiments run at once, a whole number "
                          f"of at least 1 (e.g. {JOBS_VARIABLE}=2 dvc queue start -j 2)")
    return max(1, cores // (count * max(1, processes_per_job)))


def apply_share_of_cores(jobs: str | None = None) -> int | None:
    """Set this process's torch threads for `jobs` jobs at once, TRANSFER_JOBS by default (before torch is
    imported: OMP_NUM_THREADS, which its thread pool reads, and which the processes it starts inherit;
    after: torch.set_num_threads too). Returns the threads, or None if unset."""
    threads = share_of_cores(os.environ.get(JOBS_VARIABLE) if jobs is None else jobs, available_cores(),
                             int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if threads is None:
        return None
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return threads
