"""TRANSFER_JOBS: each of several experiments run at once takes its share of the cores."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from transfer.core.errors import ParamsError
from transfer.core.threads import available_cores, share_of_cores


def test_each_job_gets_its_share_and_never_less_than_one_thread():
    assert share_of_cores(None, 16) is None and share_of_cores("", 16) is None  # unset: torch's default stands
    assert share_of_cores("2", 16) == 8 and share_of_cores("3", 16) == 5
    assert share_of_cores("2", 16, processes_per_job=4) == 2  # torchrun: the job's share split over its processes
    assert share_of_cores("4", 2) == 1


@pytest.mark.parametrize("jobs", ["0", "two", "-1", "1.5"])
def test_a_bad_job_count_says_what_to_set(jobs):
    with pytest.raises(ParamsError, match="TRANSFER_JOBS=2 dvc queue start -j 2"):
        share_of_cores(jobs, 8)


def test_a_stage_runs_with_its_share_of_the_cores():
    """run_stage, which every stage's main goes through, sets torch's threads from the variable."""
    script = ("import torch\nfrom transfer.core.stage_entry import run_stage\n"
              "run_stage(lambda: print(torch.get_num_threads()))")
    env = {**os.environ, "TRANSFER_JOBS": "2"}
    env.pop("OMP_NUM_THREADS", None)
    shared = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    share = max(1, available_cores() // 2)
    assert int(shared.stdout) == share
    assert f"TRANSFER_JOBS: {share} torch thread(s) of {available_cores()} cores" in shared.stderr  # in its log
    bad = subprocess.run([sys.executable, "-c", script], env={**env, "TRANSFER_JOBS": "many"}, capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "TRANSFER_JOBS='many'" in bad.stderr and "Traceback" not in bad.stderr
