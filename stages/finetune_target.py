"""finetune_target: train the target-domain model with the chosen transfer strategy.

    python -m stages.finetune_target             # finetune.strategy, from models/domain -> models/target
    python -m stages.finetune_target --baseline  # target_only from the base model     -> models/baseline
    python -m stages.finetune_target --labels 50 --out models/budget/...  # a point of the label-budget curve

A strategy that starts with the source phase (sequential, source_only) starts from models/source, the
finetune_source stage's, when that was trained with this run's seed and settings, and trains its own
source phase otherwise (another seed of compare or label_budget; an auto candidate with its own
source_epochs). The baseline is what the transfer is measured against: fine-tuning of the base model on the scarce
target labels, without source data, domain-adaptive pretraining or finetune's levers (with the same
finetune.peft, so that the gain measures the transfer, not full fine-tuning against adapters).
The model is the task's (a sequence classifier, a span-extraction QA head, a seq2seq model), always
on the same encoder; transfer/training/strategies.py holds the strategies, and
transfer/training/selection.py the cross-validated choice of finetune.strategy: auto.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from transfer.core.artifacts import atomic_path, load_dataset_output, write_json
from transfer.core.modeling import TRAINING_REPORT, resolve_model
from transfer.core.params import AUTO, STRATEGIES, candidate_name, candidate_params, load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.registry import task_for
from transfer.training.checkpoints import resumable
from transfer.training.label_subsets import budget_subset, original_rows
from transfer.training.selection import BASELINE, Recipe, select_recipe, source_phase_name
from transfer.training.source_phase import SOURCE_STRATEGIES, settings_difference
from transfer.training.strategies import train_strategy

TOKENIZED, DOMAIN, SOURCE = Path("data/tokenized"), Path("models/domain"), Path("models/source")


def source_model_for(params, strategy: str) -> str | None:
    """models/source where `strategy` starts with the source phase and it was trained with `params`'
    settings; says so when it was not."""
    if strategy not in SOURCE_STRATEGIES:
        return None
    differences = settings_difference(SOURCE, params)
    if differences:
        print(f"finetune_target: {SOURCE} was trained with other settings ({', '.join(differences[:4])}); "
              f"{strategy} trains its own source phase")
        return None
    return str(SOURCE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="store_true", help="train the target_only baseline from the base model")
    parser.add_argument("--strategy", choices=STRATEGIES, help="override finetune.strategy (compare stages)")
    parser.add_argument("--seed", type=int, help="override seed (compare stages)")
    parser.add_argument("--out", type=Path, help="output folder (default models/target or models/baseline)")
    parser.add_argument("--labels", type=int, help="train on this many labeled target examples (label_budget stages)")
    cli = parser.parse_args()
    params = load_params()
    task = task_for(params)
    if cli.seed is not None:
        params = params.model_copy(update={"seed": cli.seed})
    base = resolve_model(params.model.name)
    if cli.baseline:
        strategy, init, out = "target_only", base, cli.out or Path("models/baseline")
    else:
        strategy, init, out = cli.strategy or params.finetune.strategy, str(DOMAIN), cli.out or Path("models/target")
    source = load_dataset_output(TOKENIZED / "source")
    target = load_dataset_output(TOKENIZED / "target")
    if cli.labels is not None:
        available = len(original_rows(target["train"]))
        if cli.labels >= available:
            # label_budget drops this size from the curve with a note; the full budget is the headline pair.
            reason = (f"--labels {cli.labels} is not below the {available} labeled target train examples: the "
                      f"full budget is the headline models' point of the curve")
            with atomic_path(out) as tmp:
                tmp.mkdir(parents=True)
                write_json(tmp / TRAINING_REPORT, {"strategy": strategy, "seed": params.seed, "labels": cli.labels,
                                                   "skipped": reason})
            print(f"finetune_target: nothing to train: {reason}")
            return
        target["train"] = budget_subset(target["train"], cli.labels, params.seed)
    # Plot curves of the two headline models; compare runs keep theirs beside the model.
    curves = Path("metrics/curves") / f"{out.name}.csv" if cli.out is None else None
    budget = "" if cli.labels is None else f" labels={cli.labels}"
    print(f"finetune_target: strategy={strategy} seed={params.seed}{budget} from {init} -> {out}")
    started = time.perf_counter()
    recipes = {}
    if strategy == AUTO:
        recipes[BASELINE] = Recipe("target_only", base, levers=False)
        for candidate in params.finetune.auto.candidates:
            own = candidate_params(params, candidate)
            recipes[candidate_name(candidate)] = Recipe(own.finetune.strategy, init, levers=True, params=own,
                                                        source_model=source_model_for(own, own.finetune.strategy))
    source_model = None if cli.baseline else source_model_for(params, strategy)
    reads_source_model = source_model or any(recipe.source_model for recipe in recipes.values())
    inputs = [TOKENIZED, init] + ([base] if strategy == AUTO else []) + ([SOURCE] if reads_source_model else [])
    run = resumable(params, out, {"strategy": strategy, "init": init, "labels": cli.labels}, inputs)
    recipe, selection = Recipe(strategy, init, levers=not cli.baseline, source_model=source_model), None
    if strategy == AUTO:
        selection = select_recipe(params, task, recipes, source, target, run)
        recipe = recipes[selection["chosen"]]
        print(f"finetune_target: auto chose {selection['chosen']} ({recipe.strategy} from {recipe.init})"
              + (": no candidate scored above the baseline recipe" if selection["guard_applied"] else ""))
    own = recipe.params or params
    with atomic_path(out) as tmp:
        train_strategy(own, task, recipe.strategy, recipe.init, source, target, tmp, curves or tmp / "curves.csv",
                       run, levers=recipe.levers, selection=selection, source_model=recipe.source_model,
                       source_phase=source_phase_name(selection["chosen"], own, params) if selection else "source")
        # Wall time is a measurement, not a result: kept apart so quality metrics stay identical run to run.
        # auto:<chosen> names the shipped recipe in compare's table.
        shipped = f"{strategy}:{selection['chosen']}" if selection else strategy
        write_json(tmp / TRAINING_REPORT, {"strategy": shipped, "seed": params.seed, "peft": params.finetune.peft,
                                           "labels": cli.labels,
                                           "wall_time_s": round(time.perf_counter() - started, 1)})
    run.finish()


if __name__ == "__main__":
    run_stage(main)
