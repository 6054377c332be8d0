"""`launch.command` runs the training stages under torchrun from `dvc repro`: two CPU processes (gloo), one
published output."""

from __future__ import annotations

import csv

from transformers import AutoModelForSequenceClassification

from tests.conftest import ran_stages


def last_step(curves) -> int:
    with open(curves) as f:
        return max(int(row["step"]) for row in csv.DictReader(f))


def test_dvc_repro_launches_the_training_stages_under_torchrun_when_params_say_so(built_copy):
    dvc_project = built_copy  # trained in one process
    assert dvc_project.repro("finetune_target") == []
    curves = dvc_project.root / "metrics/curves/target.csv"
    single = last_step(curves)

    params = dvc_project.params
    params["launch"]["command"] = "torchrun --nproc_per_node 2"
    dvc_project.set_params(params)
    result = dvc_project.run("dvc", "repro", "finetune_target")
    assert "Traceback" not in result.stderr
    # the launcher is in their command
    assert ran_stages(result.stdout) == ["pretrain_domain", "finetune_source", "finetune_target"]
    assert "> torchrun --nproc_per_node 2 -m stages.finetune_target" in result.stdout
    assert dvc_project.stale("finetune_target") == {}  # recorded by dvc itself: no manual `dvc commit`
    # Each process takes half of the examples: half the optimizer steps per epoch.
    assert last_step(curves) <= single // 2 + 2
    model = AutoModelForSequenceClassification.from_pretrained(dvc_project.root / "models/trained/target")
    assert model.config.transfer_strategy == "sequential"
    leftovers = [p.name for p in (dvc_project.root / "models").glob("**/*") if ".tmp-" in p.name]
    assert leftovers == []  # rank 1 wrote nothing beside the published outputs
