"""Every `dvc exp run` of the README is valid for the shipped params.yaml and dvc.yaml: its `-S` overrides,
applied by DVC's own code, give params that pass the schema and a pipeline DVC can resolve. (The pipeline
test runs the cheap ones end to end on the tiny model.)"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dvc.utils.hydra import apply_overrides

from tests.conftest import ROOT
from tests.readme import readme_commands
from transfer.core.params import load_params

EXPERIMENTS = [command for command in readme_commands() if command.startswith("dvc exp run")]


def overrides(command: str) -> list[str]:
    words = shlex.split(command)
    return [words[i + 1] for i, word in enumerate(words) if word in ("-S", "--set-param")]


def test_the_readme_shows_experiments():
    assert len(EXPERIMENTS) >= 5 and all(overrides(command) for command in EXPERIMENTS)


@pytest.mark.parametrize("command", EXPERIMENTS)
def test_readme_experiment_is_valid_for_the_shipped_params(command, tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    apply_overrides(tmp_path / "params.yaml", overrides(command))
    load_params(tmp_path / "params.yaml")  # raises ParamsError with the key named
    dvc = Path(sys.executable).parent / "dvc"
    subprocess.run([dvc, "init", "-q", "--no-scm"], cwd=tmp_path, check=True)
    listed = subprocess.run([dvc, "stage", "list"], cwd=tmp_path, capture_output=True, text=True)
    assert listed.returncode == 0 and "finetune_target" in listed.stdout, listed.stderr
