"""The strategy registry: a transfer strategy declares itself once, and everything that needs to know about it
reads the declaration — the params schema (which names are valid, for finetune.strategy, auto's candidates and
compare.strategies), which strategies start with the source phase (finetune_source's models/source), which are
tuned over finetune.learning_rate's grid, which tasks can run them (a label head), and how it trains.

The built-in strategies are declared below and trained by `transfer.training.strategies.fit_strategy`. A new
one is a `Strategy` with a `train` function, registered with `register_strategy` from any module imported
before the params are read (a test, a plugin's `__init__`); docs/architecture.md shows one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    # Starts with the source phase (the labeled source data, trained once by finetune_source), then its own.
    source_phase: bool = False
    # Needs a classifier over data.labels (per-domain loss weights, a domain head, SetFit's head): tasks
    # without one (QA, translation) refuse it.
    label_head: bool = False
    # SetFit's own training on a sentence-transformer encoder: no Trainer phases, so the levers that act on a
    # gradient target phase (WiSE-FT, self-training, L2-SP, replay, mixed MLM) do not apply.
    setfit: bool = False
    # Tuned over finetune.learning_rate's grid like the baseline (otherwise trained at its first value).
    tuned_over_grid: bool = True
    # The finetune.* sections it reads besides the common ones (documentation: compare_train's params in dvc.yaml
    # are written by hand and list the built-ins').
    reads: tuple[str, ...] = ()
    # How a strategy of its own trains: train(model, phase, *, params, task, source, target) -> {phase name:
    # Trainer}, after the source phase where `source_phase` (its Trainer is in the result already). `phase`
    # is fit_strategy's: phase(model, train=..., evaluation=..., epochs=..., learning_rate=..., phase=name)
    # runs one checkpointed Trainer phase. None: a built-in, trained by fit_strategy itself.
    train: Callable[..., dict[str, Any]] | None = None


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(strategy: Strategy) -> Strategy:
    """Make `strategy` a valid finetune.strategy (and auto candidate, and compare entry)."""
    STRATEGIES[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise KeyError(f"unknown strategy `{name}` (known: {', '.join(STRATEGIES)})")
    return STRATEGIES[name]


def strategy_names(label_head: bool = True) -> tuple[str, ...]:
    """Every registered strategy a task with (or without) a label head can run."""
    return tuple(name for name, strategy in STRATEGIES.items() if label_head or not strategy.label_head)


for _strategy in (
    Strategy("target_only", "fine-tune on the target labels alone (the baseline's recipe)"),
    Strategy("source_only", "train on the source labels only, then score on the target (zero-shot transfer)",
             source_phase=True, tuned_over_grid=False),
    Strategy("sequential", "the source phase, then a target phase (the default)", source_phase=True),
    Strategy("joint", "source and target labels in one phase, with per-domain loss weights",
             reads=("finetune.joint",)),
    Strategy("dann", "domain-adversarial training: a gradient-reversed domain head on labeled and unlabeled text",
             label_head=True, reads=("finetune.dann",)),
    Strategy("setfit", "SetFit: contrastive sentence-pair fine-tuning of the encoder, then a head",
             label_head=True, setfit=True, tuned_over_grid=False, reads=("finetune.setfit",)),
    Strategy("sequential_setfit", "SetFit on source pairs, then on target pairs", label_head=True, setfit=True,
             tuned_over_grid=False, reads=("finetune.setfit",)),
):
    register_strategy(_strategy)
