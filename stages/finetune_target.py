"""finetune_target: train the target-domain model with the chosen transfer strategy.

    python -m stages.finetune_target             # finetune.strategy, from models/domain -> models/trained/target
    python -m stages.finetune_target --baseline  # target_only from the base model     -> models/trained/baseline
    python -m stages.finetune_target --labels 50 --out models/budget/...  # a point of the label-budget curve

Both headline arms are tuned alike (transfer/training/tuning.py): the learning rate from finetune.learning_rate's
grid by target validation, the epoch by validation, logit adjustment by validation; then each is trained
again with seed + each of finetune.seed_offsets at the chosen learning rate, into models/trained/<arm>_seeds/<seed>,
so that evaluate's interval covers the training seed. A label-budget point trains at the learning rate its
arm chose at the full budget, and selects epochs on a validation split cut in proportion to its labels.

A strategy that starts with the source phase (sequential, source_only) starts from models/source, the
finetune_source stage's, when that was trained with this run's settings (any seed but compare's), and
trains its own source phase otherwise (an auto candidate with its own source_epochs, compare's other seeds).
The baseline is what the transfer is measured against: fine-tuning of the base model on the scarce
target labels, without source data, domain-adaptive pretraining or the transfer's levers (with the same
finetune.peft, so that the gain measures the transfer, not full fine-tuning against adapters).
The model is the task's (a sequence classifier, a span-extraction QA head, a seq2seq model), always
on the same encoder; transfer/training/strategies.py holds the strategies, and
transfer/training/selection.py the cross-validated choice of finetune.strategy: auto.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from transfer.core.artifacts import (
    atomic_path,
    load_dataset_output,
    seed_folders,
    seeds_folder,
    trained_folder,
    write_json,
)
from transfer.core.modeling import TRAINING_REPORT, resolve_model
from transfer.core.params import AUTO, Params, candidate_name, candidate_params, load_params
from transfer.core.stage_entry import run_stage
from transfer.core.strategy_registry import STRATEGIES
from transfer.core.switches import switched_off
from transfer.tasks.registry import task_for
from transfer.training.checkpoints import resumable
from transfer.training.label_subsets import budget_subset, original_rows, validation_for_budget
from transfer.training.selection import BASELINE, Recipe, select_recipe, source_phase_name
from transfer.training.source_phase import settings_difference, starts_with_source_phase
from transfer.training.strategies import fit_strategy, save_fitted
from transfer.training.tuning import (
    chosen_learning_rate,
    fit_over_learning_rates,
    tuning_report,
    validation_score,
    with_learning_rate,
    with_seed,
    write_tuning,
)

TOKENIZED, DOMAIN, SOURCE = Path("data/tokenized"), Path("models/domain"), Path("models/source")


def source_model_for(params: Params, strategy: str, any_seed: bool) -> str | None:
    """models/source where `strategy` starts with the source phase and it was trained with `params`'
    settings (any_seed: but perhaps another seed); says so when it was not."""
    if not starts_with_source_phase(strategy):
        return None
    differences = settings_difference(SOURCE, params, any_seed=any_seed)
    if differences:
        print(f"finetune_target: {SOURCE} was trained with other settings ({', '.join(differences[:4])}); "
              f"{strategy} trains its own source phase")
        return None
    return str(SOURCE)


def at_first_rate(params: Params) -> Params:
    return with_learning_rate(params, params.finetune.learning_rates[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="store_true", help="train the target_only baseline from the base model")
    parser.add_argument("--strategy", choices=list(STRATEGIES),  # the registry, with what a plugin registered
                        help="override finetune.strategy (compare stages): " + "; ".join(
                            f"{name}: {strategy.summary}" for name, strategy in STRATEGIES.items()))
    parser.add_argument("--seed", type=int, help="override seed (compare, label_budget stages)")
    parser.add_argument("--out", type=Path, help="output folder (default models/trained/target or .../baseline, "
                                                 "which also train finetune.seed_offsets into <folder>_seeds; "
                                                 "evaluate ships them to models/<arm> with a model card)")
    parser.add_argument("--labels", type=int, help="train on this many labeled target examples (label_budget stages)")
    cli = parser.parse_args()
    params = load_params()
    task = task_for(params)
    if cli.seed is not None:
        params = with_seed(params, cli.seed)
    base = resolve_model(params.model.name)
    arm = "baseline" if cli.baseline else "target"
    if cli.baseline:
        strategy, init = "target_only", base
    else:
        strategy, init = cli.strategy or params.finetune.strategy, str(DOMAIN)
    out = cli.out or trained_folder(arm)
    # A matrix entry of a switched-off stage (compare.enabled, label_budget.enabled) trains nothing.
    section = "label_budget" if cli.labels is not None else "compare" if cli.strategy is not None else None
    if section and not getattr(params, section).enabled:
        return write_skipped(out, strategy, params.seed, cli.labels, switched_off(section))
    source = load_dataset_output(TOKENIZED / "source")
    target = load_dataset_output(TOKENIZED / "target")
    if cli.labels is not None:
        available = len(original_rows(target["train"]))
        if cli.labels >= available:
            # label_budget drops this size from the curve with a note; the full budget is the headline pair.
            return write_skipped(out, strategy, params.seed, cli.labels,
                                 f"--labels {cli.labels} is not below the {available} labeled target train "
                                 f"examples: the full budget is the headline models' point of the curve")
        target["train"] = budget_subset(target["train"], cli.labels, params.seed)
        # Validation labels are labels too: a 50-label point does not select on the full budget's split.
        target["validation"] = validation_for_budget(target["validation"], cli.labels, available, params.seed)
        # The arm's choice at the full budget: a grid per point would multiply the curve's cost.
        params = with_learning_rate(params, chosen_learning_rate(trained_folder(arm)))
    headline = cli.out is None
    seeds = [params.seed + offset for offset in params.finetune.seed_offsets] if headline else []
    # Curves of the two headline models; compare and budget runs keep theirs beside the model.
    curves = Path("metrics/curves") / f"{out.name}.csv" if headline else None
    budget = "" if cli.labels is None else f" labels={cli.labels} (validation {len(target['validation'])})"
    print(f"finetune_target: strategy={strategy} seed={params.seed}{budget} from {init} -> {out}"
          + (f"; then seeds {seeds} -> {seeds_folder(out)}" if seeds else ""))
    started = time.perf_counter()
    # compare's seeds measure the whole recipe, source phase included; the target phase's training seeds share it.
    any_seed = cli.strategy is None
    recipes = {}
    if strategy == AUTO:
        recipes[BASELINE] = Recipe("target_only", base, levers=False)
        for candidate in params.finetune.auto.candidates:
            own = candidate_params(params, candidate)
            recipes[candidate_name(candidate)] = Recipe(own.finetune.strategy, init, levers=True, params=own,
                                                        source_model=source_model_for(own, own.finetune.strategy,
                                                                                      any_seed))
    source_model = None if cli.baseline else source_model_for(params, strategy, any_seed)
    reads_source_model = source_model or any(recipe.source_model for recipe in recipes.values())
    inputs = [TOKENIZED, init] + ([base] if strategy == AUTO else []) + ([SOURCE] if reads_source_model else [])
    run = resumable(params, out, {"strategy": strategy, "init": init, "labels": cli.labels, "seeds": seeds}, inputs)
    recipe, selection = Recipe(strategy, init, levers=not cli.baseline, source_model=source_model), None
    if strategy == AUTO:
        # The candidates are cross-validated at the grid's first learning rate; the grid then tunes the winner.
        first = {name: replace(r, params=at_first_rate(r.params)) if r.params else r for name, r in recipes.items()}
        selection = select_recipe(at_first_rate(params), task, first, source, target, run)
        recipe = recipes[selection["chosen"]]
        print(f"finetune_target: auto chose {selection['chosen']} ({recipe.strategy} from {recipe.init})"
              + (": no candidate scored above the baseline recipe" if selection["guard_applied"] else ""))
    phase = source_phase_name(selection["chosen"], recipe.params or params, params) if selection else "source"

    def fit(own: Params, prefix: str):
        return fit_strategy(own, task, recipe.strategy, recipe.init, source, target, run, levers=recipe.levers,
                            phase_prefix=prefix, source_phase=phase, source_model=recipe.source_model)

    def score(own: Params, fitted) -> float:
        return validation_score(task, own, fitted, target["validation"])

    with atomic_path(out) as tmp:
        fitted, own, chosen = fit_over_learning_rates(recipe.params or params, recipe.strategy, fit, score)
        save_fitted(fitted, tmp, curves or tmp / "curves.csv", selection)
        report = tuning_report(task, own, fitted, target["validation"], chosen)
        write_tuning(tmp, report)
        warn_if_stuck(arm, report)
        del fitted
        # Wall time is a measurement, not a result: kept apart so quality metrics stay identical run to run.
        # auto:<chosen> names the shipped recipe in compare's table.
        shipped = f"{strategy}:{selection['chosen']}" if selection else strategy
        write_json(tmp / TRAINING_REPORT, {"strategy": shipped, "seed": params.seed, "peft": params.finetune.peft,
                                           "labels": cli.labels,
                                           "wall_time_s": round(time.perf_counter() - started, 1)})
    if headline:
        train_seeds(own, seeds, fit, task, target, seed_folders(out, params.seed, params.finetune.seed_offsets), arm)
    run.finish()


def write_skipped(out: Path, strategy: str, seed: int, labels: int | None, reason: str) -> None:
    """A folder that says why nothing was trained into it (its training report's `skipped`)."""
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write_json(tmp / TRAINING_REPORT, {"strategy": strategy, "seed": seed, "labels": labels, "skipped": reason})
    print(f"finetune_target: nothing to train: {reason}")


def train_seeds(own: Params, seeds: list[int], fit, task, target, folders: dict[int, Path], arm: str) -> None:
    """The arm again with each training seed at the chosen learning rate, into `folders` (seed_folders: all
    under <arm>_seeds/, written at once; empty when finetune.seed_offsets is)."""
    with atomic_path(seeds_folder(folders[own.seed])) as tmp:
        tmp.mkdir(parents=True)
        for seed in seeds:
            started = time.perf_counter()
            seeded = with_seed(own, seed)
            print(f"finetune_target: {arm} seed {seed} at learning rate {own.finetune.learning_rate:g}")
            fitted = fit(seeded, f"seed{seed}_")
            folder = tmp / folders[seed].name
            save_fitted(fitted, folder, folder / "curves.csv")
            report = tuning_report(task, seeded, fitted, target["validation"], {"learning_rate":
                                                                                own.finetune.learning_rate})
            write_tuning(folder, report)
            warn_if_stuck(arm, report)
            write_json(folder / TRAINING_REPORT, {"strategy": fitted[0].config.transfer_strategy, "seed": seed,
                                                  "peft": own.finetune.peft,
                                                  "wall_time_s": round(time.perf_counter() - started, 1)})
            del fitted


def warn_if_stuck(arm: str, report: dict) -> None:
    stuck = report["predicts_one_class"]
    if stuck is not None:
        print(f"finetune_target: WARNING: the {arm} (seed {report['seed']}) predicts '{stuck}' for every validation "
              f"example: it did not learn" + ("; its gain is not a transfer gain" if arm == "baseline" else ""))


if __name__ == "__main__":
    run_stage(main)
