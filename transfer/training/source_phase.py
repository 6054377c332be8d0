"""The source phase, trained once.

sequential's first phase, and all of source_only, is a training on the labeled source data from the
domain-adapted model: it reads no target data. The finetune_source stage trains it once (models/source)
and every model that starts with it (the headline sequential model, compare's source_only, each
label-budget point, auto's folds) starts from that folder instead of training it again, so a change of
a target-side param never retrains it.

The folder records what it was trained with (`source_settings`); a run whose settings differ (another
seed in compare.seeds, an auto candidate with its own source_epochs) trains its own source phase, as
before. The training seeds of the target phase (finetune.seed_offsets, label_budget.seeds) share it: their
claims are about the target phase trained on the scarce labels, and the source phase is trained once, as
pretrain_domain is.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerState

from transfer.core.params import AUTO, Params
from transfer.core.strategy_registry import get_strategy


def starts_with_source_phase(strategy: str) -> bool:
    """Whether `strategy` starts with the source phase: those can start from models/source. auto is no strategy
    of its own (its candidates are)."""
    return strategy != AUTO and get_strategy(strategy).source_phase

# What the source phase depends on beyond the data and the initial weights (finetune keys): runs that
# agree on these, on the seed and on the model settings share one source phase.
SOURCE_PHASE_KEYS = ("source_epochs", "source_learning_rate", "batch_size", "weight_decay", "warmup_ratio", "peft",
                     "lora")
SETTINGS_FILE, STATE_FILE = "source_phase.json", "source_trainer_state.json"


def source_settings(params: Params) -> dict:
    """Everything in params that changes what the source phase trains."""
    finetune = params.finetune.model_dump(mode="json")
    return {"task": params.task, "seed": params.seed, "model": params.model.model_dump(mode="json"),
            "labels": list(params.data.labels), "finetune": {key: finetune[key] for key in SOURCE_PHASE_KEYS}}


def usable_source_model(folder: str | Path, params: Params) -> str | None:
    """`folder` when it holds a source phase trained with `params`' settings, else None (train one)."""
    return None if settings_difference(folder, params) else str(folder)


def settings_difference(folder: str | Path, params: Params, any_seed: bool = False) -> list[str]:
    """The settings (dotted names) in which `folder`'s source phase differs from what `params` asks for.
    any_seed: the seed may differ (a training seed of the target phase, which shares the source phase)."""
    settings = Path(folder) / SETTINGS_FILE
    if not settings.is_file():
        return [f"{settings} is missing"]
    recorded, wanted = json.loads(settings.read_text()), source_settings(params)

    def flat(tree: dict, prefix: str = "") -> dict:
        items = {}
        for key, value in tree.items():
            items |= flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value}
        return items

    recorded, wanted = flat(recorded), flat(wanted)
    return sorted(key for key in recorded.keys() | wanted.keys()
                  if recorded.get(key) != wanted.get(key) and not (any_seed and key == "seed"))


class FinishedPhase:
    """A phase trained by another stage, standing in for its Trainer where only the log history is read
    (the learning curves run on from it)."""

    def __init__(self, state: TrainerState):
        self.state = state


def finished_source_phase(folder: str | Path) -> FinishedPhase:
    return FinishedPhase(TrainerState.load_from_json(str(Path(folder) / STATE_FILE)))
