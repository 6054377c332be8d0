"""The transfer suite: does the source domain (and the unlabeled target text) buy a better target model?

    make transfer-bench                                  # every pair, the seeds below (hours a seed on 2 cores)
    python bench/transfer.py --pairs imdb-to-airline --seeds 1 2 3

Fixed real pairs, 100 labeled target examples each (the rest of the target train split is unlabeled
text), each scored on its own target test split. Per pair and seed, from the same data:

- target_only    fine-tune the base model on the 100 labels (the pipeline's baseline, tuned as the pipeline
                 tunes it: a target phase per value of finetune.learning_rate's grid, each with its
                 logit-adjustment strength chosen on target validation, the best validation macro-F1 kept)
- source_only    TAPT model + source phase, no target labels
- sequential     TAPT model + source phase + target phase (the default recipe), tuned the same way
- wise_ft        sequential with source/target weights interpolated, the mix chosen on target validation
- self_training  a student from the source-phase weights on the labels plus class-balanced pseudo-labels
                 of the unlabeled target text from sequential
- *+em           the model's test posteriors under target priors estimated by EM on the unlabeled text
                 (instead of logit adjustment, as finetune.label_shift: em replaces it in the pipeline)
The methods after the first three train at the learning rate sequential chose; every model but the *+em ones
(EM replaces it) and the SetFit peers is scored with the logit adjustment chosen on its validation
predictions, as the pipeline ships every model (`logit_adjustment` in each result).
- l2sp=<a>       sequential whose target phase is pulled toward the source-phase weights (L2-SP, strength a)
- replay         sequential with as many source examples as labels replayed in the target phase
- auto           finetune.strategy: auto with candidates [sequential]: the baseline recipe and sequential
                 cross-validated (3 folds, macro-F1 of the pooled held-out predictions) on the 100 labels
                 at the grid's first learning rate, the better one's tuned test score (guarded)
- mixed_mlm      sequential whose target phase adds the MLM loss on unlabeled target text (UDALM-style)
- setfit         SetFit on the base sentence-transformer and the 100 labels (the few-shot peer)
- sequential_setfit  the pipeline's strategy: SetFit on pairs of 100 source examples, then on the 100 labels
- any other registered strategy (transfer/core/strategy_registry.py: joint, dann, one a plugin registers)
                 trained as finetune_target trains it (fit_strategy over the learning-rate grid, from the
                 TAPT model, after the source phase above where it declares one; the pipeline's levers), as
                 it ships

`--methods` runs a subset of the methods after the first three (which every other one starts from).

Every model is built with the library the pipeline runs (corpora, cleaning, budgets, tokenization,
pretraining, train_phase); params come from params.yaml, with the overrides in SCENARIO. Results go to
bench/transfer_tuned.json after every pair and seed (--out; bench/transfer.json and transfer_seed4*.json are the
runs from before the suite tuned its baselines), and the .md next to it is the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transfer.analysis.significance import paired_bootstrap  # noqa: E402
from transfer.core.modeling import load_tokenizer, resolve_model, set_seed  # noqa: E402
from transfer.core.params import (  # noqa: E402
    PARAMS_FILE,
    KeepSourceParams,
    MixedMlmParams,
    Params,
    SetfitParams,
    parse_params,
)
from transfer.core.strategy_registry import get_strategy, strategy_names  # noqa: E402
from transfer.data.cleaning import clean_domains  # noqa: E402
from transfer.data.corpora import load_corpus  # noqa: E402
from transfer.data.training_sets import apply_budgets  # noqa: E402
from transfer.tasks.classification import class_probabilities, load_classifier, macro_f1, tokenize_rows  # noqa: E402
from transfer.tasks.registry import get_task  # noqa: E402
from transfer.training.checkpoints import ResumableRun  # noqa: E402
from transfer.training.keep_source import keep_source_arguments  # noqa: E402
from transfer.training.label_shift import (  # noqa: E402
    calibrated_target_priors,
    choose_strength,
    class_priors,
    logit_adjusted,
    reweight,
    tempered,
)
from transfer.training.mixed_objective import mixed_objective_arguments  # noqa: E402
from transfer.training.pretraining import adapt  # noqa: E402
from transfer.training.selection import BASELINE, Recipe, choose, cross_validate, label_folds  # noqa: E402
from transfer.training.self_training import select_pseudo_labels, with_pseudo_labels  # noqa: E402
from transfer.training.setfit_training import (  # noqa: E402
    fit_setfit_strategy,
    setfit_probabilities,
    train_setfit,
)
from transfer.training.strategies import fit_strategy  # noqa: E402
from transfer.training.trainer import train_phase  # noqa: E402
from transfer.training.tuning import fit_over_learning_rates  # noqa: E402
from transfer.training.tuning import validation_score as pipeline_validation_score  # noqa: E402
from transfer.training.weight_ensembling import select_mix, snapshot  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BINARY, THREE_CLASS = ["negative", "positive"], ["negative", "neutral", "positive"]
TWEETS = {"kind": "packaged", "name": "crowdflower_tweets"}
DRUGS = {"kind": "packaged", "name": "drugscom_reviews"}


def shared_csv(name: str) -> dict:
    return {"kind": "files", "path": str(SHARED / f"{name}.csv")}


# name: (source, target, labels). Binary pairs drop `neutral` (clean rejects it as unknown_label).
PAIRS = {
    "tweets-to-drugs": (TWEETS, DRUGS, THREE_CLASS),
    "imdb-to-airline": (shared_csv("imdb"), shared_csv("airline"), BINARY),
    "airline-to-imdb": (shared_csv("airline"), shared_csv("imdb"), BINARY),
    "tweets-to-airline": (TWEETS, shared_csv("airline"), BINARY),
    "imdb-to-drugs": (shared_csv("imdb"), DRUGS, BINARY),
}
# The suite's scenario on top of params.yaml: 100 labels; 45% of a 2,000-row file is its test split
# (900 reviews; data.test_fraction must stay below 0.5), 5% (100) validation; 2,000 source examples
# (IMDB reviews are 4x longer than tweets).
# Learning-rate grid and logit-adjustment strengths: params.yaml's (the pipeline's selection rule); one
# training seed per run (the suite's seeds are its runs).
SCENARIO = {"data": {"target_train_labeled": 100, "source_train_max": 2000, "validation_fraction": 0.05,
                     "test_fraction": 0.45},
            "finetune": {"seed_offsets": []}}
MIXES = [0.0, 0.25, 0.5, 0.75, 1.0]
SETFIT = {"iterations": 5, "epochs": 1, "batch_size": 16, "max_length": 128}
SETFIT_BODY_RATE, SETFIT_SOURCE_EXAMPLES = 2e-5, 100  # setfit's default body learning rate; as many as the labels
SELF_TRAINING = {"threshold": 0.7, "share": 0.5, "epochs": 3}
REPLAY, AUTO_FOLDS, MIXED_MLM = 1.0, 3, 1.0
KEEP_SOURCE = {f"l2sp={a}": KeepSourceParams(l2sp=a, replay=0.0) for a in (0.01, 0.1)}
CORE = ("target_only", "source_only", "sequential")  # always run: the others start from them
BESPOKE = ("sequential+em", "wise_ft", "self_training", "self_training+em", *KEEP_SOURCE, "replay",
           "mixed_mlm", "auto", "setfit", "sequential_setfit")  # built here, from the models above


def registered_strategies() -> tuple[str, ...]:
    """The registry's strategies with no bespoke code here: trained by the pipeline's fit_strategy."""
    return tuple(name for name in strategy_names() if name not in (*CORE, *BESPOKE))


OPTIONAL = (*BESPOKE, *registered_strategies())


# --smoke: the same code paths in a few minutes, to check the harness (its figures mean nothing).
SMOKE = {"data": {"source_train_max": 100, "target_train_labeled": 40},
         "pretrain_domain": {"epochs": 0.2, "head_warmup_epochs": 0.2},
         "finetune": {"target_epochs": 1, "source_epochs": 0.3}, "tokenize": {"max_length": 64}}


def scenario_params(source: dict, target: dict, labels: list[str], seed: int, smoke: bool = False) -> Params:
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    for overrides in (SCENARIO, SMOKE) if smoke else (SCENARIO,):
        for section, values in overrides.items():
            raw[section].update(values)
    raw["data"].update(source=source, target=target, labels=labels)
    raw["seed"] = seed
    return parse_params(raw, origin="bench scenario")


def pair_rows(params: Params) -> dict:
    """Source and target rows per split, through the pipeline's ingest -> clean -> budget path."""
    task = get_task("classification")
    data = params.data
    raw = {domain: {split: [{**r, "domain": domain, "split": split} for r in rows]
                    for split, rows in load_corpus(spec, params.seed, data.validation_fraction, data.test_fraction,
                                                   task).items()}
           for domain, spec in (("source", data.source), ("target", data.target))}
    kept, _ = clean_domains(raw, data.labels, params.clean, task)
    apply_budgets(kept, data, params.seed, task)
    return kept


def pair_data(params: Params, tokenizer):
    """pair_rows, and their tokenized splits."""
    data = params.data
    kept = pair_rows(params)
    max_length = params.tokenize.max_length
    tokenized = {domain: {split: tokenize_rows(rows, tokenizer, data.labels, max_length)
                          for split, rows in splits.items() if rows}
                 for domain, splits in kept.items()}
    return kept, tokenized


class Scorer:
    """Test-set scores of each method from its class probabilities, and the gain over target_only."""

    def __init__(self, test, labels: list[str], primary: str):
        self.actual = np.asarray(test["label"])
        self.n_classes, self.primary = len(labels), primary
        self.results: dict[str, dict] = {}
        self.predicted: dict[str, np.ndarray] = {}

    def score(self, predicted: np.ndarray) -> dict:
        return {"accuracy": float(np.mean(predicted == self.actual)),
                "macro_f1": macro_f1(self.actual, predicted, self.n_classes),
                "predicted_share": (np.bincount(predicted, minlength=self.n_classes)
                                    / len(predicted)).round(3).tolist()}

    def add(self, method: str, probabilities: np.ndarray, seconds: float, **extra) -> None:
        predicted = probabilities.argmax(axis=1)
        self.predicted[method] = predicted
        result = self.score(predicted)
        self.results[method] = {**result, "seconds": round(seconds, 1), **extra}
        print(f"  {method:<22} {self.primary} {result[self.primary]:.4f}  ({seconds:.0f} s)", flush=True)

    def gains(self, seed: int) -> None:
        """Each method's gain over target_only in points, with its paired-bootstrap 95% interval."""
        metric = {"accuracy": lambda a, p: float(np.mean(a == p)),
                  "macro_f1": lambda a, p: macro_f1(a, p, self.n_classes)}[self.primary]
        baseline = self.predicted["target_only"]
        for method, predicted in self.predicted.items():
            if method == "target_only":
                continue
            interval = paired_bootstrap(lambda pos, p=predicted: metric(self.actual[pos], p[pos]),
                                        lambda pos: metric(self.actual[pos], baseline[pos]), len(self.actual),
                                        resamples=1000, seed=seed, points=100.0)
            self.results[method]["gain_points"] = round(100 * (self.results[method][self.primary]
                                                               - self.results["target_only"][self.primary]), 2)
            self.results[method]["gain_ci95_points"] = interval["gain_ci95_points"]
            self.results[method]["significant"] = interval["significant"]


def tuned_target_phase_of(model, start: dict, label: str, *, params: Params, tokenizer, target,
                          run) -> tuple[float, dict]:
    """The pipeline's selection (transfer/training/tuning.py): from the same start and seed, a target phase
    per learning rate of the grid (its epoch by validation), each with the logit-adjustment strength its
    validation macro-F1 prefers; the rate whose adjusted model scores best (the first on a tie) is loaded
    into `model`. Returns the strength and what was chosen."""
    config, n_labels, seed = params.finetune, len(params.data.labels), params.seed
    validation_labels = np.asarray(target["validation"]["label"])
    train_priors = class_priors(np.asarray(target["train"]["label"]), n_labels)

    def validation_macro_f1(actual, predicted):
        return macro_f1(actual, predicted, n_labels)

    best, scores = None, {}
    for rate in config.learning_rates:
        model.load_state_dict(start)
        set_seed(seed)
        train_phase(model, tokenizer, train=target["train"], evaluation=target["validation"],
                    task=get_task("classification"), params=params, epochs=config.target_epochs, learning_rate=rate,
                    run=run, phase=f"{label}_lr{rate:g}")
        probabilities = class_probabilities(model, target["validation"], tokenizer, params.evaluate.batch_size)
        strength, _ = choose_strength(probabilities, validation_labels, train_priors, config.logit_adjustment,
                                      validation_macro_f1)
        predicted = logit_adjusted(probabilities, train_priors, strength).argmax(axis=1)
        value = validation_macro_f1(validation_labels, predicted)
        scores[f"{rate:g}"] = round(value, 4)
        if best is None or value > best[0]:  # unrounded, as fit_over_learning_rates compares
            best = (value, rate, strength, snapshot(model), predicted)
    _, rate, strength, weights, predicted = best
    model.load_state_dict(weights)
    one_class = len(set(predicted.tolist())) == 1  # never left one class on validation: it did not learn
    return strength, {"learning_rate": rate, "logit_adjustment": strength, "validation_macro_f1": scores,
                      "predicts_one_class": one_class}


def run_pair(name: str, seed: int, scratch: Path, methods: set[str], smoke: bool = False) -> dict:
    source_spec, target_spec, labels = PAIRS[name]
    params = scenario_params(source_spec, target_spec, labels, seed, smoke)
    setfit_config = {**SETFIT, "iterations": 1, "max_length": 64} if smoke else SETFIT
    primary = "accuracy" if len(labels) == 2 else "macro_f1"
    base = resolve_model(params.model.name)
    tokenizer = load_tokenizer(base, params)
    kept, data = pair_data(params, tokenizer)
    source, target = data["source"], data["target"]
    sizes = {f"{d}_{s}": len(rows) for d, splits in kept.items() for s, rows in splits.items()}
    print(f"{name} seed {seed}: {sizes}", flush=True)
    task = get_task("classification")
    run = ResumableRun(scratch / name / str(seed), {"bench": f"{name}-{seed}"}, root=scratch / "checkpoints")
    config = params.finetune
    batch = params.evaluate.batch_size
    scorer = Scorer(target["test"], labels, primary)

    def phase(model, train, evaluation, epochs, learning_rate, label, **arguments):
        return train_phase(model, tokenizer, train=train, evaluation=evaluation, task=task, params=params,
                           epochs=epochs, learning_rate=learning_rate, run=run, phase=label, **arguments)

    def timed_probabilities(model, split):
        return class_probabilities(model, target[split], tokenizer, batch)

    train_priors = class_priors(np.asarray(target["train"]["label"]), len(labels))
    validation_labels = np.asarray(target["validation"]["label"])

    def validation_macro_f1(actual, predicted):
        return macro_f1(actual, predicted, len(labels))

    def tuned_target_phase(model, start: dict, label: str) -> tuple[float, dict]:
        return tuned_target_phase_of(model, start, label, params=params, tokenizer=tokenizer, target=target, run=run)

    def adjusted(probabilities, strength):
        return np.exp(logit_adjusted(probabilities, train_priors, strength))

    def as_shipped(model_, test_probabilities) -> tuple[np.ndarray, dict]:
        """Test probabilities with the logit adjustment the pipeline gives every model it ships (chosen on
        target validation), and the strength chosen: a method's gain is then its own, not the adjustment's."""
        strength_, _ = choose_strength(timed_probabilities(model_, "validation"), validation_labels, train_priors,
                                       config.logit_adjustment, validation_macro_f1)
        return adjusted(test_probabilities, strength_), {"logit_adjustment": strength_}

    # target_only: the baseline
    started = time.perf_counter()
    set_seed(seed)
    model = load_classifier(base, params)
    strength, chosen = tuned_target_phase(model, snapshot(model), "target_only")
    scorer.add("target_only", adjusted(timed_probabilities(model, "test"), strength), time.perf_counter() - started,
               **chosen)

    # TAPT on the unlabeled target text (pretrain_domain), shared by every transfer method
    started = time.perf_counter()
    texts = [row["text"] for row in kept["target"]["unlabeled"]]
    domain_dir = scratch / name / str(seed) / "domain"
    # general=[]: the suite does not measure forgetting (pretrain_domain does)
    pretraining = adapt(params, base, texts, [], domain_dir, run, scratch / "tapt_curves.csv")
    tapt_seconds = time.perf_counter() - started

    # source phase -> source_only; target phase -> sequential
    started = time.perf_counter()
    set_seed(seed)
    model = load_classifier(str(domain_dir), params)
    phase(model, source["train"], None, config.source_epochs, config.source_learning_rate, "source")
    source_weights = snapshot(model)
    source_seconds = time.perf_counter() - started
    probabilities, chosen = as_shipped(model, timed_probabilities(model, "test"))
    scorer.add("source_only", probabilities, source_seconds + tapt_seconds, **chosen)
    started = time.perf_counter()
    strength, chosen = tuned_target_phase(model, source_weights, "sequential")
    rate = chosen["learning_rate"]  # the levers below train at it
    target_weights = snapshot(model)
    unlabeled = timed_probabilities(model, "unlabeled")
    sequential_test = timed_probabilities(model, "test")
    sequential_seconds = tapt_seconds + source_seconds + time.perf_counter() - started
    scorer.add("sequential", adjusted(sequential_test, strength), sequential_seconds, **chosen)
    target_phase_seconds = sequential_seconds - tapt_seconds - source_seconds

    # label-shift correction of sequential: calibrated on validation, target priors by EM on the unlabeled text
    def label_shift(model_, test_probabilities, unlabeled_probabilities, priors):
        temperature, target_priors = calibrated_target_priors(timed_probabilities(model_, "validation"),
                                                              validation_labels, unlabeled_probabilities, priors)
        corrected = reweight(tempered(test_probabilities, temperature), priors, target_priors)
        return corrected, {"temperature": round(temperature, 3), "estimated_priors": target_priors.round(3).tolist()}

    if "sequential+em" in methods:
        corrected, chosen = label_shift(model, sequential_test, unlabeled, train_priors)
        scorer.add("sequential+em", corrected, sequential_seconds, **chosen)

    if "wise_ft" in methods:
        # WiSE-FT: the mix of source-phase and target-phase weights, chosen on target validation
        started = time.perf_counter()
        def validation_score(candidate) -> float:
            predicted = class_probabilities(candidate, target["validation"], tokenizer, batch).argmax(axis=1)
            return macro_f1(validation_labels, predicted, len(labels))

        mix, mix_scores = select_mix(model, source_weights, target_weights, MIXES, validation_score)
        probabilities, chosen = as_shipped(model, timed_probabilities(model, "test"))
        scorer.add("wise_ft", probabilities, sequential_seconds + time.perf_counter() - started,
                   mix=mix, validation_macro_f1=mix_scores, **chosen)

    if methods & {"self_training", "self_training+em"}:
        # self-training: pseudo-labels of the unlabeled text from sequential, a student from the source phase
        started = time.perf_counter()
        rows, pseudo = select_pseudo_labels(unlabeled, SELF_TRAINING["threshold"], SELF_TRAINING["share"],
                                            train_priors)
        model.load_state_dict(source_weights)
        student_train = datasets.concatenate_datasets([target["train"], with_pseudo_labels(target["unlabeled"], rows,
                                                                                           pseudo)])
        set_seed(seed)
        phase(model, student_train, target["validation"], SELF_TRAINING["epochs"], rate, "student")
        student_test = timed_probabilities(model, "test")
        student_seconds = sequential_seconds + time.perf_counter() - started
        shares = np.bincount(pseudo, minlength=len(labels)) / max(len(rows), 1)
        probabilities, chosen = as_shipped(model, student_test)
        scorer.add("self_training", probabilities, student_seconds, pseudo_labels=len(rows),
                   pseudo_label_share=shares.round(3).tolist(), **chosen)
        corrected, chosen = label_shift(model, student_test, timed_probabilities(model, "unlabeled"), train_priors)
        scorer.add("self_training+em", corrected, student_seconds, **chosen)

    if methods & {*KEEP_SOURCE, "replay"}:
        # keeping what the source taught in the target phase: L2-SP toward the source-phase weights, source replay
        keeps = KEEP_SOURCE | {"replay": KeepSourceParams(l2sp=0.0, replay=REPLAY)}
        for method, keep in ((m, k) for m, k in keeps.items() if m in methods):
            started = time.perf_counter()
            model.load_state_dict(source_weights)
            train_set, arguments = keep_source_arguments(keep, source["train"], target["train"], source_weights, seed)
            arguments.pop("report")
            train_phase(model, tokenizer, train=train_set, evaluation=target["validation"], task=task, params=params,
                        epochs=config.target_epochs, learning_rate=rate, run=run, phase=method,
                        **arguments)
            probabilities, chosen = as_shipped(model, timed_probabilities(model, "test"))
            scorer.add(method, probabilities,
                       sequential_seconds - target_phase_seconds + time.perf_counter() - started, **chosen)

    if "auto" in methods:
        # auto: the baseline recipe and sequential, cross-validated on the labels; the guarded choice ships (the
        # pipeline retrains it on every label with the same seed: the target_only or sequential model above)
        started = time.perf_counter()
        classifier = model

        def predict(name, recipe, fold, training, heldout):
            set_seed(seed)
            fold_model = load_classifier(base, params) if name == BASELINE else classifier
            if name != BASELINE:
                fold_model.load_state_dict(source_weights)
            phase(fold_model, training, target["validation"], config.target_epochs, config.learning_rates[0],
                  f"auto_{name}_{fold}")
            return class_probabilities(fold_model, heldout, tokenizer, batch).argmax(axis=1)

        recipes = {BASELINE: Recipe("target_only", base, False), "sequential": Recipe("sequential", "tapt", True)}
        picked = choose(cross_validate(recipes, label_folds(target["train"], AUTO_FOLDS, seed), target["train"],
                                       predict, lambda actual, predicted: macro_f1(actual, predicted, len(labels))))
        shipped = "target_only" if picked["chosen"] == BASELINE else "sequential"
        scorer.add("auto", np.eye(len(labels))[scorer.predicted[shipped]], scorer.results[shipped]["seconds"]
                   + time.perf_counter() - started, chosen=picked["chosen"],
                   cv_macro_f1={k: v["pooled"] for k, v in picked["scores"].items()})

    if "mixed_mlm" in methods:
        # UDALM-style: the target phase of sequential with the MLM loss on unlabeled target text in every step
        started = time.perf_counter()
        model.load_state_dict(source_weights)
        wrapper, arguments = mixed_objective_arguments(model, tokenizer, str(domain_dir), target["unlabeled"],
                                                       params.model_copy(update={"finetune": config.model_copy(
                                                           update={"mixed_mlm": MixedMlmParams(weight=MIXED_MLM)})}))
        phase(wrapper, target["train"], target["validation"], config.target_epochs, rate,
              "mixed_mlm", **arguments)
        probabilities, chosen = as_shipped(model, timed_probabilities(model, "test"))
        scorer.add("mixed_mlm", probabilities,
                   sequential_seconds - target_phase_seconds + time.perf_counter() - started, **chosen)

    if "setfit" in methods:
        started = time.perf_counter()
        train_rows = kept["target"]["train"]
        setfit_model = train_setfit(base, [r["text"] for r in train_rows],
                                    [labels.index(r["label"]) for r in train_rows], seed=seed, **setfit_config)
        test_texts = [r["text"] for r in kept["target"]["test"]]
        # kept rows and the tokenized test set are in the same order (tokenize_rows keeps it)
        scorer.add("setfit", setfit_probabilities(setfit_model, test_texts, len(labels)),
                   time.perf_counter() - started)

    if "sequential_setfit" in methods:
        # the pipeline's strategy: SetFit on pairs of source examples, then on the target's, from the base model
        # like the peer above (the pipeline starts from models/domain when pretrain_domain is on)
        started = time.perf_counter()
        setfit_params = SetfitParams(iterations=setfit_config["iterations"], epochs=setfit_config["epochs"],
                                     batch_size=setfit_config["batch_size"], body_learning_rate=SETFIT_BODY_RATE,
                                     source_examples=SETFIT_SOURCE_EXAMPLES)
        folded, trained_on = fit_setfit_strategy(
            params.model_copy(update={"finetune": config.model_copy(update={"setfit": setfit_params})}),
            "sequential_setfit", base, base, source, target, tokenizer)
        scorer.add("sequential_setfit", timed_probabilities(folded, "test"), time.perf_counter() - started,
                   **trained_on)

    for strategy in [m for m in registered_strategies() if m in methods]:
        started = time.perf_counter()
        starts_after_source = get_strategy(strategy).source_phase

        def fit(own: Params, prefix: str, strategy=strategy):
            # the source phase's checkpoint is the one trained above (same TAPT model, data and seed): restored
            return fit_strategy(own, task, strategy, str(domain_dir), source, target, run,
                                phase_prefix=f"{strategy}_{prefix}", source_phase="source")

        def shipped_score(own: Params, fitted) -> float:
            return pipeline_validation_score(task, own, fitted, target["validation"])

        fitted, own, chosen = fit_over_learning_rates(params, strategy, fit, shipped_score)
        registered_model = fitted[0].eval()
        levers = getattr(registered_model.config, "transfer_levers", None) or {}
        scorer.add(strategy, timed_probabilities(registered_model, "test"),
                   time.perf_counter() - started + (tapt_seconds + (source_seconds if starts_after_source else 0)),
                   learning_rate=own.finetune.learning_rate, learning_rate_grid=chosen["learning_rate_grid"],
                   logit_adjustment=levers.get("logit_adjustment", {}).get("strength"))
        del fitted, registered_model

    scorer.gains(seed)
    return {"pair": name, "seed": seed, "primary": primary, "sizes": sizes,
            "tapt_loss_reduction": pretraining["loss_reduction"], "methods": scorer.results}


def summarize(runs: list[dict]) -> dict:
    """Per pair and method: mean and std over seeds of the primary score and of the gain."""
    table: dict[str, dict] = {}
    for entry in runs:
        pair = table.setdefault(entry["pair"], {"primary": entry["primary"], "seeds": [], "methods": {}})
        pair["seeds"].append(entry["seed"])
        for method, result in entry["methods"].items():
            cell = pair["methods"].setdefault(method, {"scores": [], "gains": [], "significant": []})
            cell["scores"].append(result[entry["primary"]])
            cell["gains"].append(result.get("gain_points", 0.0))
            cell["significant"].append(result.get("significant"))
    for pair in table.values():
        for cell in pair["methods"].values():
            cell["mean"], cell["std"] = float(np.mean(cell["scores"])), float(np.std(cell["scores"]))
            cell["mean_gain_points"] = float(np.mean(cell["gains"]))
    methods = sorted({m for pair in table.values() for m in pair["methods"]})
    average = {m: float(np.mean([p["methods"][m]["mean"] for p in table.values() if m in p["methods"]]))
               for m in methods}
    return {"pairs": table, "average": average}


def combined_runs(files: list[Path]) -> list[dict]:
    """The runs of several result files, one per pair x seed: where two files ran the same pair and seed,
    its methods are united, the first file's result kept for a method both ran (the same code and seed
    give the same result; a difference means the files came from different code)."""
    merged: dict[tuple[str, int], dict] = {}
    for path in files:
        for run in json.loads(path.read_text())["runs"]:
            key = (run["pair"], run["seed"])
            if key in merged:
                merged[key] = {**merged[key], "methods": {**run["methods"], **merged[key]["methods"]}}
            else:
                merged[key] = run
    return list(merged.values())


def markdown(summary: dict, wall_seconds: float | None) -> str:
    methods = list(dict.fromkeys(m for pair in summary["pairs"].values() for m in pair["methods"]))
    lines = ["| pair (metric, seeds) | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for name, pair in summary["pairs"].items():
        cells = []
        for method in methods:
            cell = pair["methods"].get(method)
            if cell is None:
                cells.append("")
                continue
            text = f"{100 * cell['mean']:.1f} ± {100 * cell['std']:.1f}"
            if len(cell["scores"]) != len(pair["seeds"]):
                text += f" [{len(cell['scores'])} seed{'s' if len(cell['scores']) > 1 else ''}]"
            if method != "target_only":
                flags = "".join("*" if s else "" for s in cell["significant"])
                text += f" ({cell['mean_gain_points']:+.1f}{flags})"
            cells.append(text)
        lines.append(f"| {name} ({pair['primary']}, {len(pair['seeds'])}) | " + " | ".join(cells) + " |")
    n_pairs = len(summary["pairs"])
    averages = []
    for m in methods:
        present = sum(m in pair["methods"] for pair in summary["pairs"].values())
        noted = f" [{present} pair{'s' if present > 1 else ''}]" if present < n_pairs else ""
        averages.append(f"{100 * summary['average'][m]:.1f}{noted}")
    lines.append("| **average** | " + " | ".join(averages) + " |")
    pairs = summary["pairs"].values()
    # The gain is paired per seed, so it compares methods that ran on different seeds, which the scores do not.
    gains = [f"{np.mean([p['methods'][m]['mean_gain_points'] for p in pairs if m in p['methods']]):+.1f}"
             if m != "target_only" else "" for m in methods]
    lines.append("| **mean gain over target_only** | " + " | ".join(gains) + " |")
    wall = f"\n\nWall time: {wall_seconds / 60:.1f} min.\n" if wall_seconds is not None else "\n"
    return ("Score × 100, mean ± std over seeds; (gain over target_only in points; * per seed whose paired-"
            "bootstrap 95% interval excludes 0); [n seeds] / [n pairs] where a method ran on fewer than the row "
            "or the table.\n\n" + "\n".join(lines) + wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", choices=list(PAIRS), default=list(PAIRS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--methods", nargs="*", choices=OPTIONAL, default=list(BESPOKE),
                        help=f"which methods beyond {', '.join(CORE)} (always run) to run; default: all but the "
                             f"registered strategies ({', '.join(registered_strategies())}), which run when named; "
                             f"none named: those three only")
    parser.add_argument("--no-setfit", action="store_true", help="leave the SetFit peer out")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets: checks the harness, not the methods")
    parser.add_argument("--out", type=Path, default=Path("bench/transfer_tuned.json"))
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in --out and run only the missing pair x seed ones")
    parser.add_argument("--combine", nargs="+", type=Path, metavar="JSON",
                        help="run nothing: one table (--out, .json and .md) from the runs of these result files")
    cli = parser.parse_args()
    if cli.combine:
        runs = combined_runs(cli.combine)
        summary = summarize(runs)
        cli.out.write_text(json.dumps({"combined_from": [str(p) for p in cli.combine], "summary": summary,
                                       "runs": runs}, indent=2) + "\n")
        cli.out.with_suffix(".md").write_text(markdown(summary, None))
        print(cli.out.with_suffix(".md").read_text())
        return
    runs, started, previous_wall = [], time.perf_counter(), 0.0
    if cli.resume and cli.out.exists():
        kept = json.loads(cli.out.read_text())
        runs, previous_wall = kept["runs"], kept["wall_seconds"]
    done = {(run["pair"], run["seed"]) for run in runs}
    with tempfile.TemporaryDirectory(prefix="transfer-bench-") as scratch:
        for seed in cli.seeds:
            for name in cli.pairs:
                if (name, seed) in done:
                    continue
                methods = set(cli.methods) - ({"setfit"} if cli.no_setfit else set())
                runs.append(run_pair(name, seed, Path(scratch), methods, smoke=cli.smoke))
                summary = summarize(runs)
                wall = previous_wall + time.perf_counter() - started  # summed over resumed sessions
                cli.out.write_text(json.dumps({"wall_seconds": round(wall, 1), "scenario": SCENARIO,
                                               "setfit": SETFIT, "self_training": SELF_TRAINING,
                                               "summary": summary, "runs": runs}, indent=2) + "\n")
                cli.out.with_suffix(".md").write_text(markdown(summary, wall))
    print(cli.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
