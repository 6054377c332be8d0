"""Resumable training: interrupted after a checkpoint and run again, a phase continues from that
checkpoint (not from step 0), a finished phase is not repeated, and the run ends with exactly the
weights and logs of an uninterrupted one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from tests.conftest import synthetic_rows, tiny_params
from transfer.core.modeling import set_seed
from transfer.core.params import parse_params
from transfer.tasks.classification import load_classifier, tokenize_rows
from transfer.tasks.registry import get_task
from transfer.training.checkpoints import ResumableRun
from transfer.training.trainer import train_phase, write_curves

LABELS = ["negative", "neutral", "positive"]
# As sequential: a source phase that checkpoints every few steps, then a target phase that keeps its best epoch.
PHASES = (("source", False), ("target", True))


class Interrupted(Exception):
    pass


class InterruptAfterFirstSave(TrainerCallback):
    def __init__(self, phase: str):
        self.phase = phase

    def on_save(self, args, state, control, **kwargs):
        if Path(args.output_dir).name == self.phase:
            raise Interrupted(f"{self.phase} at step {state.global_step}")


class FirstSteps(TrainerCallback):
    """The global step each phase's first training step starts from."""

    def __init__(self):
        self.first: dict[str, int] = {}

    def on_step_begin(self, args, state, control, **kwargs):
        self.first.setdefault(Path(args.output_dir).name, state.global_step)


@pytest.fixture(scope="module")
def setup(tiny_model):
    from transformers import AutoTokenizer

    raw = tiny_params(tiny_model, {})
    raw["checkpoint"] = {"every_steps": 3}
    params = parse_params(raw)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    train = tokenize_rows(synthetic_rows("target", 40, 0), tokenizer, LABELS, 32)
    validation = tokenize_rows(synthetic_rows("target", 12, 1), tokenizer, LABELS, 32)
    return params, tokenizer, train, validation


def run_phases(setup, tiny_model, root: Path, *callbacks: TrainerCallback, every_steps: int | None = None):
    params, tokenizer, train, validation = setup
    if every_steps is not None:
        params = params.model_copy(update={"checkpoint": params.checkpoint.model_copy(
            update={"every_steps": every_steps})})
    set_seed(params.seed)
    model = load_classifier(str(tiny_model), params)
    run = ResumableRun("models/target", {"inputs": "same"}, root=root)
    trainers = [train_phase(model, tokenizer, train, validation if evaluate else None, task=get_task("classification"),
                            params=params, epochs=3,
                            learning_rate=3e-3, run=run, phase=name, callbacks=list(callbacks))
                for name, evaluate in PHASES]
    return model, trainers, run


def test_an_interrupted_run_resumes_and_ends_with_the_uninterrupted_weights(setup, tiny_model, tmp_path):
    reference, reference_trainers, _ = run_phases(setup, tiny_model, tmp_path / "uninterrupted")
    root = tmp_path / "interrupted"

    with pytest.raises(Interrupted, match="source at step 3"):
        run_phases(setup, tiny_model, root, InterruptAfterFirstSave("source"))
    steps = FirstSteps()
    with pytest.raises(Interrupted, match="target"):
        run_phases(setup, tiny_model, root, steps, InterruptAfterFirstSave("target"))
    assert steps.first["source"] == 3, "the source phase restarted instead of resuming"
    steps = FirstSteps()
    model, trainers, run = run_phases(setup, tiny_model, root, steps)
    assert "source" not in steps.first, "the finished source phase ran again"
    assert steps.first["target"] == trainers[1].state.max_steps // 3, "the target phase did not resume at epoch 2"

    for name, weight in reference.state_dict().items():
        assert torch.equal(weight, model.state_dict()[name]), name
    for ours, theirs in zip(trainers, reference_trainers, strict=True):
        assert ours.state.best_metric == theirs.state.best_metric
    write_curves(tmp_path / "reference.csv", dict(zip(("source", "target"), reference_trainers, strict=True)))
    write_curves(tmp_path / "resumed.csv", dict(zip(("source", "target"), trainers, strict=True)))
    assert (tmp_path / "resumed.csv").read_text() == (tmp_path / "reference.csv").read_text()
    run.finish()
    assert not root.exists()


def test_a_phase_shorter_than_every_steps_keeps_no_state_and_restarts(setup, tiny_model, tmp_path):
    """Checkpointing the optimizer each epoch costs more than re-running a phase shorter than
    checkpoint.every_steps: such a phase saves its weights (for the best epoch) only, and a run
    interrupted in it starts the phase afresh, still ending with the uninterrupted weights."""
    reference, reference_trainers, _ = run_phases(setup, tiny_model, tmp_path / "uninterrupted", every_steps=1000)
    root = tmp_path / "interrupted"
    with pytest.raises(Interrupted, match="target"):
        run_phases(setup, tiny_model, root, InterruptAfterFirstSave("target"), every_steps=1000)
    (saved,) = (root / "models/target/target").glob("checkpoint-*")
    assert (saved / "model.safetensors").exists() and not (saved / "optimizer.pt").exists()

    steps = FirstSteps()
    model, trainers, _ = run_phases(setup, tiny_model, root, steps, every_steps=1000)
    assert "source" not in steps.first, "the finished source phase ran again"
    assert steps.first["target"] == 0, "the short target phase resumed from a checkpoint without optimizer state"
    for name, weight in reference.state_dict().items():
        assert torch.equal(weight, model.state_dict()[name]), name
    assert trainers[1].state.best_metric == reference_trainers[1].state.best_metric


def test_only_phases_of_every_steps_or_more_keep_resumable_state(monkeypatch):
    from transfer.training.checkpoints import checkpoint_arguments

    def epoch_end(every_steps: int, epochs: float) -> dict:  # 100 examples in batches of 16: 7 steps an epoch
        return checkpoint_arguments(every_steps, mid_epoch=False, examples=100, batch_size=16, epochs=epochs)

    assert epoch_end(100, 15) == {"save_only_model": False, "save_total_limit": 1, "save_strategy": "epoch",
                                  "logging_steps": 1}  # 105 steps
    assert epoch_end(98, 14)["save_only_model"] is False  # 98 steps
    assert epoch_end(100, 14) == {"save_only_model": True, "logging_steps": 1}  # 98 steps: re-run after a kill
    assert epoch_end(0, 100)["save_only_model"] is True
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # Trainer refuses weights-only checkpoints there
    assert epoch_end(100, 14)["save_only_model"] is False


def test_checkpoints_of_other_inputs_are_discarded(tmp_path):
    (tmp_path / "models/target/source/checkpoint-3").mkdir(parents=True)
    (tmp_path / "models/target/source/checkpoint-3/trainer_state.json").write_text("{}")
    run = ResumableRun("models/target", {"data/x": "old"}, root=tmp_path)
    assert run.last_checkpoint("source").endswith("checkpoint-3")
    run = ResumableRun("models/target", {"data/x": "new"}, root=tmp_path)
    assert run.last_checkpoint("source") is None and not (tmp_path / "models/target/source").exists()


def test_an_incomplete_checkpoint_is_never_resumed_from(tmp_path):
    run = ResumableRun("models/target", {"data/x": "same"}, root=tmp_path)
    for step, complete in ((3, True), (6, False)):  # killed while writing checkpoint-6
        folder = tmp_path / f"models/target/source/checkpoint-{step}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert run.last_checkpoint("source").endswith("checkpoint-3")


def test_a_stage_killed_mid_training_resumes_under_dvc_repro(built_copy, tmp_path):
    """SIGKILL in pretrain_domain's MLM phase, then in finetune_target's target phase (after
    finetune_source's source phase): each re-run of `dvc repro` resumes from the checkpoint and publishes the
    uninterrupted run's exact model, curves and metrics."""
    dvc_project = built_copy  # its data stages stay cached
    params = dvc_project.params
    params["checkpoint"]["every_steps"] = 2
    params["pretrain_domain"]["epochs"] = 2.0  # a checkpoint at the end of epoch 1 to resume from
    dvc_project.set_params(params)
    dvc_project.run("dvc", "repro", "finetune_target")
    root = dvc_project.root
    outputs = ["models/domain/model.safetensors", "models/source/model.safetensors",
               "models/trained/target/model.safetensors", "metrics/pretrain.json",
               "metrics/curves/pretrain.csv", "metrics/curves/target.csv"]
    uninterrupted = {path: (root / path).read_bytes() for path in outputs}
    assert not (root / "checkpoints").exists(), "checkpoints outlived the published outputs"

    def kill_after_checkpoint_in(phase: str) -> dict[str, str]:
        return {"PYTHONPATH": str(Path(__file__).parent / "kill_hook"), "KILL_AFTER_CHECKPOINT": phase,
                "KILL_MARKERS": str(tmp_path / "killed")}

    # DVC restores a killed stage's outputs from its cache when it has run before with the same inputs
    # (here: the reference run), without training. A first run killed for real has nothing to restore.
    shutil.rmtree(root / ".dvc/cache")
    kill = kill_after_checkpoint_in("full")
    killed = dvc_project.run("dvc", "repro", "--force", "--single-item", "pretrain_domain", env=kill, check=False)
    assert killed.returncode != 0 and (tmp_path / "killed/full").exists()
    assert not (root / "models/domain").exists()
    assert list((root / "checkpoints/models/domain/full").glob("checkpoint-*"))
    resumed = dvc_project.run("dvc", "repro", "finetune_target", env=kill)
    assert "resuming phase `full` from checkpoints/models/domain/full/checkpoint-" in resumed.stdout

    shutil.rmtree(root / ".dvc/cache")
    # The first value of the learning-rate grid (tests/conftest.py): each value's phases are its own.
    kill = kill_after_checkpoint_in("lr0.003_target")
    killed = dvc_project.run("dvc", "repro", "--force", "--single-item", "finetune_target", env=kill, check=False)
    assert killed.returncode != 0 and (tmp_path / "killed/lr0.003_target").exists()
    resumed = dvc_project.run("dvc", "repro", "finetune_target", env=kill)
    assert ("resuming phase `lr0.003_target` from checkpoints/models/trained/target/lr0.003_target/checkpoint-"
            in resumed.stdout)

    assert {path: (root / path).read_bytes() for path in outputs} == uninterrupted
    assert not (root / "checkpoints").exists() and not list((root / "models").glob("**/.*.tmp-*"))
    assert dvc_project.stale("finetune_target") == {}
