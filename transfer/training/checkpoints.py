"""Resumable training: a training stage killed mid-run picks up from its last checkpoint on re-run.

Each run (one output folder, e.g. models/target) keeps full Trainer checkpoints (weights, optimizer,
scheduler, RNG states) under checkpoints/<output path>/<phase>/, and the weights of every finished
phase under <phase>/final/, so sequential's target phase does not repeat the source phase. The
folder is removed once the output is published.

Why not a DVC `persist: true` output: DVC never run-caches a stage that has one, so every training
stage would lose `dvc exp run`'s restore-from-run-cache and `dvc push --run-cache` sharing. The
folder is git-ignored and undeclared instead. Reading it is safe because a run only resumes when
the fingerprint of all that determines training (the code, the params, the stage's arguments and
the bytes of its input folders) is the one the checkpoints were written under; otherwise they
are discarded and training starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_model
from transformers import TrainerState

from transfer.core.artifacts import atomic_path, is_main_process, write_json
from transfer.core.errors import ModelError

CHECKPOINTS = Path("checkpoints")
# The pipeline code a run was trained with: the stage scripts and this package.
CODE_ROOT = Path(__file__).resolve().parents[2]
CODE_FOLDERS = ("stages", "transfer")
FINGERPRINT, FINAL, FINAL_STATE, WEIGHTS = "fingerprint.json", "final", "trainer_state.json", "model.safetensors"


def fingerprint(params: Any, arguments: dict[str, Any], inputs: list[str | Path]) -> dict[str, str]:
    """sha256 of each thing that determines a training run: the pipeline code, the params, the stage's
    arguments and every input file. A hub model id (not a folder) enters by name."""
    def file_digest(path: Path) -> str:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    text = json.dumps({"params": params.model_dump(mode="json"), "arguments": arguments}, sort_keys=True, default=str)
    manifest = {"params and arguments": hashlib.sha256(text.encode()).hexdigest()}
    manifest |= {p.relative_to(CODE_ROOT).as_posix(): file_digest(p)
                 for folder in CODE_FOLDERS for p in sorted((CODE_ROOT / folder).rglob("*.py"))}
    for item in map(Path, inputs):
        files = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else []
        manifest |= {str(p): file_digest(p) for p in files} if files else {str(item): "not a local folder"}
    return manifest


class ResumableRun:
    """The checkpoints of one training run, valid for one fingerprint (see `fingerprint`)."""

    def __init__(self, output: str | Path, fingerprint: dict[str, str], root: Path = CHECKPOINTS):
        self.root, self.folder = root, root / Path(output)
        recorded_file = self.folder / FINGERPRINT
        recorded = json.loads(recorded_file.read_text()) if recorded_file.exists() else fingerprint
        changed = sorted(k for k in recorded.keys() | fingerprint.keys() if recorded.get(k) != fingerprint.get(k))
        self.usable = not changed
        if not is_main_process():
            return  # rank 0 owns the folder; a stale one is ignored here and removed there
        if changed:
            print(f"checkpoints: {self.folder} was written for other inputs ({', '.join(changed[:5])}"
                  f"{' ...' if len(changed) > 5 else ''} changed); starting afresh")
            shutil.rmtree(self.folder)
        if not recorded_file.exists():
            write_json(recorded_file, fingerprint)

    def phase_dir(self, phase: str) -> Path:
        return self.folder / phase

    def last_checkpoint(self, phase: str) -> str | None:
        """The newest complete Trainer checkpoint (trainer_state.json is the last file Trainer writes)."""
        folder = self.phase_dir(phase)
        if not self.usable or not folder.is_dir():
            return None
        complete = [p for p in folder.glob("checkpoint-*") if (p / FINAL_STATE).exists()]
        return str(max(complete, key=lambda p: int(p.name.split("-")[1]))) if complete else None

    def train(self, trainer, phase: str):
        """trainer.train(), resumed from this phase's last checkpoint, or skipped if the phase finished.

        A finished phase restores its final weights and Trainer state (log history for the curves):
        the next phase's Trainer re-seeds at construction, so what follows is exactly what an
        uninterrupted run does.
        """
        final = self.phase_dir(phase) / FINAL
        if self.usable and (final / FINAL_STATE).exists():
            print(f"checkpoints: phase `{phase}` already finished, restoring {final}")
            if not load_final_weights(trainer.model, final / WEIGHTS):
                raise ModelError(f"{final}: the saved weights do not fit the model; delete {self.folder} and re-run")
            trainer.state = TrainerState.load_from_json(str(final / FINAL_STATE))
            return trainer
        checkpoint = self.last_checkpoint(phase)
        if checkpoint and trainer.args.save_only_model:
            print(f"checkpoints: phase `{phase}` is shorter than checkpoint.every_steps and keeps no resumable "
                  "state: starting it afresh")
            if is_main_process():
                for stale in self.phase_dir(phase).glob("checkpoint-*"):
                    shutil.rmtree(stale)
            checkpoint = None
        if checkpoint:
            print(f"checkpoints: resuming phase `{phase}` from {checkpoint}")
        trainer.train(resume_from_checkpoint=checkpoint)
        if is_main_process():
            with atomic_path(final) as tmp:
                tmp.mkdir(parents=True)
                save_model(trainer.model, tmp / WEIGHTS)  # tied tensors (LM head = embeddings) once
                trainer.state.save_to_json(str(tmp / FINAL_STATE))
            for old in self.phase_dir(phase).glob("checkpoint-*"):
                shutil.rmtree(old)  # the phase's final weights supersede its checkpoints
        return trainer

    def finish(self) -> None:
        """The output is published: the checkpoints have served."""
        if is_main_process() and self.folder.exists():
            shutil.rmtree(self.folder)
            parent = self.folder.parent
            while parent != self.root.parent and not any(parent.iterdir()):
                parent.rmdir()  # up to checkpoints/ itself, once nothing is left in it
                parent = parent.parent


def load_final_weights(model, path: Path) -> bool:
    """Load a finished phase's weights; False unless every tensor is restored, itself or via its tied twin."""
    weights = load_file(path)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    every = torch.nn.Module.state_dict(model)  # with tied twins, which our MLM wrapper's state_dict leaves out
    restored = {every[key].data_ptr() for key in weights if key in every}
    return not unexpected and all(every[key].data_ptr() in restored for key in missing)


def checkpoint_arguments(every_steps: int, *, mid_epoch: bool, examples: int, batch_size: int, epochs: float,
                         logging_steps: int = 10) -> dict[str, Any]:
    """TrainingArguments for resumable phases: full state (weights, optimizer, RNG) in each checkpoint.

    Mid-epoch checkpoints (every `every_steps`) are only exact when batches draw no random numbers:
    resuming inside an epoch, Trainer collates the first batch before it restores the RNG state, so
    an MLM collator would mask that batch differently from an uninterrupted run. MLM phases, and
    phases that keep their best epoch (they evaluate each epoch anyway), checkpoint at epoch ends.
    Logging falls on every checkpoint: Trainer does not checkpoint the loss summed since the last
    log, and a resumed run would otherwise log a different mean loss for that window.

    `every_steps` is what a kill may cost: an epoch-end phase of fewer steps in all is cheaper to
    re-run than to checkpoint (the optimizer state is twice the weights, written each epoch), so it
    keeps no resumable state (`save_only_model`: the weights a best-epoch choice needs, if any) and
    a killed run starts it afresh (`ResumableRun.train`).
    """
    arguments: dict[str, Any] = {"save_only_model": False, "save_total_limit": 1}
    if not mid_epoch:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        steps_per_epoch = max(1, math.ceil(math.ceil(examples / world) / batch_size))
        logging = {"logging_steps": math.gcd(logging_steps, steps_per_epoch)}
        short = every_steps == 0 or math.ceil(epochs * steps_per_epoch) < every_steps
        if short and not sharded_by_accelerate():  # Trainer refuses weights-only checkpoints under FSDP/DeepSpeed
            return {"save_only_model": True} | logging
        return arguments | logging | {"save_strategy": "epoch"}
    if every_steps == 0:
        return arguments | {"save_strategy": "no"}
    return arguments | {"save_strategy": "steps", "save_steps": every_steps,
                        "logging_steps": math.gcd(logging_steps, every_steps)}


def sharded_by_accelerate() -> bool:
    """Started by `accelerate launch` with FSDP or DeepSpeed (it says so in the environment)."""
    flags = ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED")
    return any(os.environ.get(flag, "").lower() == "true" for flag in flags)


def resumable(params: Any, output: str | Path, arguments: dict[str, Any], inputs: list[str | Path]) -> ResumableRun:
    """The checkpoints of the run that publishes `output`, given everything that determines it."""
    return ResumableRun(output, fingerprint(params, arguments, inputs))
