"""The training stages run unchanged under torchrun: two CPU processes (gloo), one published output."""

from __future__ import annotations

import csv

from transformers import AutoModelForSequenceClassification


def last_step(curves) -> int:
    with open(curves) as f:
        return max(int(row["step"]) for row in csv.DictReader(f))


def test_finetune_and_pretrain_under_torchrun_with_two_processes(dvc_project):
    dvc_project.run("dvc", "repro", "finetune_target")
    curves = dvc_project.root / "metrics/curves/target.csv"
    single = last_step(curves)

    for stage in ("pretrain_domain", "finetune_target"):
        result = dvc_project.run("torchrun", "--nproc_per_node", "2", "-m", f"stages.{stage}")
        assert "Traceback" not in result.stderr
    # Each process takes half of the examples: half the optimizer steps per epoch.
    assert last_step(curves) <= single // 2 + 2
    model = AutoModelForSequenceClassification.from_pretrained(dvc_project.root / "models/target")
    assert model.config.transfer_strategy == "sequential"
    leftovers = [p.name for p in (dvc_project.root / "models").iterdir() if ".tmp-" in p.name]
    assert leftovers == []  # rank 1 wrote nothing beside the published outputs
