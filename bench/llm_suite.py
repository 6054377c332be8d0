"""A real LLM against the MiniLM default on the transfer suite: the packaged SmolLM2-135M-Instruct through
every decoder path, each arm's gain over the MiniLM target-only baseline with its paired 95% interval.

    python bench/llm_suite.py --pairs tweets-to-drugs imdb-to-drugs tweets-to-airline --seeds 42 43 --resume

Per pair and seed, from the suite's data (bench/transfer.py: the same corpora, splits and 100 target labels):

- target_only     MiniLM on the 100 labels, tuned as the suite tunes it (the baseline every gain is over)
- zero_shot       SmolLM2 prompted through its chat template, contextually calibrated; `zero_shot_raw` the
                  uncalibrated verbalizer log-likelihoods
- few_shot        the same with prompting.few_shot_k demonstrations drawn from the 100 labels with the seed
- lora_target_only  SmolLM2 + LoRA classifier on the 100 labels, tuned the same way
- lora_sequential   SmolLM2 adapted to the target text (causal LM, one epoch: its held-out perplexity before
                  and after and the forgetting on source text are recorded), a LoRA source phase on the
                  recipe's source examples, then a LoRA target phase, tuned the same way: the pipeline's
                  sequential recipe
- student         the packaged MiniLM distilled (distill.* of params.yaml) from the SmolLM2 arm that scores
                  best on target validation, over the 100 labels and STUDENT_UNLABELED unlabeled texts
- minilm_sequential  MiniLM's sequential recipe (the pipeline's default: TAPT, source phase, tuned target
                  phase, as bench/transfer.py runs it) on the same scored test rows
- minilm_student  today's student: distill's default student (`auto`: layers 0, 2, 4 of the teacher) distilled
                  from minilm_sequential over the same labels and unlabeled texts as `student`

The SmolLM2 arms use the documented CPU recipe (bench/llm_recipe.py's RECIPE: LoRA, 128 tokens, one learning
rate, a few target epochs, shorter prompts) with 300 source examples instead of its 1,000 (SUITE_SETTINGS).
Every arm is scored on the same --test-size examples of the pair's test split (drawn with the seed), so the
interval is paired; the head-to-head comparisons are also pooled over the seeds of each pair and over the
pairs (a bootstrap that draws the seeds and, within each, the scored rows). The suite's own MiniLM
sequential on the full test split (bench/transfer_tuned.json) is listed under the table for the same pairs
and seeds.
Each arm's `seconds` is its wall time on this machine (the shared start it needs included, the
conversion not); a figure is a timing only where the run had the machine to itself (the .md says when).
Results go to bench/llm_suite.json after every pair and seed, and the table to bench/llm_suite.md; each arm
is saved as it finishes, with its test predictions, to bench/llm_suite.arms.json, so a run given --resume goes
on at the next arm it lacks, also in a pair and seed finished before that arm existed (the student's teacher,
if an earlier process ran it, is rebuilt: prompted arms re-prompt, trained ones train again).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transfer.analysis.significance import paired_bootstrap  # noqa: E402
from transfer.core.gguf_checkpoints import convert_gguf  # noqa: E402
from transfer.core.modeling import gguf_source, load_tokenizer, resolve_model, set_seed  # noqa: E402
from transfer.core.params import Params, parse_params  # noqa: E402
from transfer.tasks.classification import class_probabilities, load_classifier, macro_f1  # noqa: E402
from transfer.tasks.prompting import load_prompted_model, prompt_scores  # noqa: E402
from transfer.tasks.registry import get_task  # noqa: E402
from transfer.training.causal_pretraining import adapt_causal  # noqa: E402
from transfer.training.checkpoints import ResumableRun  # noqa: E402
from transfer.training.distillation import train_student  # noqa: E402
from transfer.training.pretraining import adapt  # noqa: E402
from transfer.training.strategies import apply_lora, merge_lora  # noqa: E402
from transfer.training.trainer import train_phase  # noqa: E402
from transfer.training.weight_ensembling import snapshot  # noqa: E402

BENCH = Path(__file__).resolve().parent


def bench_module(name: str):
    """A sibling bench script as a module (bench/transfer.py would shadow the `transfer` package by name)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUITE, RECIPE_BENCH = bench_module("transfer"), bench_module("llm_recipe")
LLM = "embedded:SmolLM2-135M-Instruct"
LLM_ARMS = ("zero_shot", "few_shot", "lora_target_only", "lora_sequential")
METHODS = (*LLM_ARMS, "student", "minilm_sequential", "minilm_student")
DOCS = BENCH.parent / "docs" / "decoders.md"
DOCS_MARKERS = ("<!-- bench/llm_suite.py writes from here -->", "<!-- to here -->")
# the table's columns: the baseline and the default, the SmolLM2 arms, the two students
TABLE_ORDER = ("target_only", "minilm_sequential", "zero_shot", "zero_shot_raw", "few_shot", "few_shot_raw",
               "lora_target_only", "lora_sequential", "student", "minilm_student")
# What item 4 decides on: SmolLM2's trained path against the default, its student against today's student
HEAD_TO_HEAD = (("lora_sequential", "minilm_sequential"), ("student", "minilm_student"))
STUDENT_UNLABELED = 300  # a prompted teacher scores every one of them: the student's cost grows with it
# The recipe's 1,000 source examples would make the LoRA source phase most of a run on 2 cores (estimated from
# the smoke run, not timed alone); the suite trains on 300.
SUITE_SETTINGS = ["data.source_train_max=300"]
# --smoke: the same code paths in minutes, to check the harness (its figures mean nothing)
SMOKE = ["data.source_train_max=40", "finetune.target_epochs=1", "finetune.source_epochs=0.5",
         "pretrain_domain.epochs=0.2", "tokenize.max_length=48", "pretrain_domain.max_length=48",
         "prompting.max_text_tokens=32", "distill.epochs=1"]


def with_settings(params: Params, settings: list[str]) -> Params:
    """params with `dvc exp run -S key.path=value` settings applied (values read as YAML, as DVC does)."""
    raw = params.model_dump(mode="json")
    for setting in settings:
        key, value = setting.split("=", 1)
        *sections, leaf = key.split(".")
        node = raw
        for section in sections:
            node = node[section]
        node[leaf] = yaml.safe_load(value)
    return parse_params(raw, origin="bench/llm_suite.py settings")


def test_subset(test, size: int, seed: int):
    """`size` test rows drawn with the seed (all of them when the split is smaller), in the split's order."""
    if size >= len(test):
        return test
    keep = set(np.random.default_rng(seed).choice(len(test), size, replace=False).tolist())
    return test.select(sorted(keep))


def by_ids(dataset, ids: list[str]):
    position = {row_id: i for i, row_id in enumerate(dataset["id"])}
    return dataset.select([position[row_id] for row_id in ids])


def restored(scorer, record: dict) -> None:
    """The arms a saved run finished, back in the scorer (their predictions give the paired intervals; an arm
    saved without them keeps the gain it was given)."""
    for method, arm in record["arms"].items():
        scorer.results[method] = arm["result"]
        if arm["predicted"] is not None:
            scorer.predicted[method] = np.asarray(arm["predicted"])


def record_of_finished(run: dict) -> dict:
    """A saved record for a pair and seed finished before its arms were saved with predictions: the results
    only (target_only is then run again, reproducing its saved score, for the new arms' paired intervals)."""
    return {"test_ids": None, "arms": {m: {"result": r, "predicted": None} for m, r in run["methods"].items()},
            "validation_macro_f1": {}, "extra": {k: run[k] for k in ("timing_note", "continued_pretraining")
                                                 if k in run},
            "settings": SUITE_SETTINGS}


def run_pair(name: str, seed: int, scratch: Path, converted: Path, methods: set[str], test_size: int,
             smoke: bool = False, settings: list[str] = (), saved: dict | None = None,
             save=lambda record: None, timing_note: str = "") -> dict:
    """One pair and seed, every arm asked for. `saved` is what an interrupted run of it finished (its arms are
    not run again); `save(record)` is called after every arm with what is done so far."""
    source_spec, target_spec, labels = SUITE.PAIRS[name]
    minilm = SUITE.scenario_params(source_spec, target_spec, labels, seed, smoke)
    llm = with_settings(minilm, [s for s in RECIPE_BENCH.RECIPE if not s.startswith("model.name=")]
                        + [f"model.name={converted}"] + SUITE_SETTINGS + list(settings) + (SMOKE if smoke else []))
    primary = "accuracy" if len(labels) == 2 else "macro_f1"
    task = get_task("classification")
    minilm_base = resolve_model(minilm.model.name)
    minilm_tokenizer, llm_tokenizer = load_tokenizer(minilm_base, minilm), load_tokenizer(str(converted), llm)
    kept, minilm_data = SUITE.pair_data(minilm, minilm_tokenizer)
    llm_kept, llm_data = SUITE.pair_data(llm, llm_tokenizer)
    for split in ("train", "validation", "test", "unlabeled"):  # only the source budget differs
        assert [r["id"] for r in kept["target"][split]] == [r["id"] for r in llm_kept["target"][split]], split
    test_ids = test_subset(minilm_data["target"]["test"], test_size, seed)["id"]
    target = {**minilm_data["target"], "test": by_ids(minilm_data["target"]["test"], test_ids)}
    llm_target = {**llm_data["target"], "test": by_ids(llm_data["target"]["test"], test_ids)}
    rows = {split: {r["id"]: r for r in kept["target"][split]} for split in kept["target"]}
    texts = {split: [rows[split][i]["text"] for i in llm_target[split]["id"]] for split in ("validation", "test")}
    sizes = {f"{d}_{s}": len(r) for d, splits in kept.items() for s, r in splits.items()}
    sizes["scored_test"] = len(test_ids)
    chosen_settings = SUITE_SETTINGS + list(settings)
    record = saved or {"test_ids": list(test_ids), "arms": {}, "validation_macro_f1": {}, "extra": {},
                       "settings": chosen_settings}
    record["test_ids"] = record["test_ids"] or list(test_ids)  # a record_of_finished: the seed draws the same rows
    if record["test_ids"] != list(test_ids) or record.get("settings", SUITE_SETTINGS) != chosen_settings:
        raise RuntimeError(f"{name} seed {seed}: the saved run scored other test rows or ran other settings "
                           f"({record.get('settings', SUITE_SETTINGS)}; now {chosen_settings}); resume with the "
                           "same ones, or delete its entry from the .arms.json file (and from --out) to start it again")
    print(f"{name} seed {seed}: {sizes}; done before: {sorted(record['arms']) or 'nothing'}", flush=True)
    run = ResumableRun(scratch / name / str(seed), {"bench": f"llm-{name}-{seed}"}, root=scratch / "checkpoints")
    # The MiniLM recipe's own phases (its TAPT is `warmup` + `full`, as SmolLM2's continued pretraining is
    # `full`): a run of its own, or the second would restore the first's weights.
    minilm_run = ResumableRun(scratch / name / str(seed) / "minilm", {"bench": f"llm-{name}-{seed}-minilm"},
                              root=scratch / "checkpoints")
    scorer = SUITE.Scorer(target["test"], labels, primary)
    restored(scorer, record)
    validation_labels = np.asarray(target["validation"]["label"])
    validation_scores = record["validation_macro_f1"]  # each SmolLM2 arm's: the student's teacher is the best
    train_priors = SUITE.class_priors(np.asarray(target["train"]["label"]), len(labels))
    teachers: dict[str, object] = {}  # arm -> what scores any target rows as [row, label] logits (this process)
    prompted_model: list = []  # the causal LM and its tokenizer, loaded once when a prompted arm needs it

    def finish(*arms: tuple) -> None:
        for method, probabilities, seconds, extra in arms:
            saved_arm = record["arms"].get(method)
            if saved_arm and saved_arm["predicted"] is not None:
                continue  # rebuilt as a teacher: the earlier process's figures and wall time stand
            scorer.add(method, probabilities, seconds, timing=timing_note, **extra)
            record["arms"][method] = {"result": scorer.results[method], "predicted": scorer.predicted[method].tolist()}
        save(record)

    def wanted(method: str) -> bool:
        return method in methods and method not in record["arms"]

    def target_only() -> None:
        started = time.perf_counter()
        set_seed(seed)
        model = load_classifier(minilm_base, minilm)
        strength, chosen = SUITE.tuned_target_phase_of(model, snapshot(model), "target_only", params=minilm,
                                                       tokenizer=minilm_tokenizer, target=target, run=run)
        probabilities = class_probabilities(model, target["test"], minilm_tokenizer, minilm.evaluate.batch_size)
        finish(("target_only", np.exp(SUITE.logit_adjusted(probabilities, train_priors, strength)),
                time.perf_counter() - started, chosen))

    def prompted(method: str) -> None:
        started = time.perf_counter()
        if not prompted_model:
            prompted_model.extend(load_prompted_model(llm))
        lm, lm_tokenizer = prompted_model
        train_rows = kept["target"]["train"]

        def prompted_logits(split_rows):
            return prompt_scores(lm, lm_tokenizer, [r["text"] for r in split_rows], train_rows, llm, method).scores
        teachers[method] = prompted_logits
        if method not in wanted_arms:  # only the student's teacher is wanted
            return
        result = prompt_scores(lm, lm_tokenizer, texts["test"], train_rows, llm, method)
        seconds = time.perf_counter() - started
        validation = prompt_scores(lm, lm_tokenizer, texts["validation"], train_rows, llm, method).scores
        validation_scores[method] = macro_f1(validation_labels, validation.argmax(axis=1), len(labels))
        used = {"demonstrations": result.used["demonstrations"], "chat_template": result.used["chat_template"],
                "validation_macro_f1": round(validation_scores[method], 4),
                "samples_per_second": round(len(test_ids) / seconds, 2)}
        finish((method, np.exp(result.scores), seconds, used), (f"{method}_raw", np.exp(result.raw), seconds, {}))

    def lora_target_phase(model, label: str) -> dict:
        model = apply_lora(model, llm.finetune.lora.r, llm.finetune.lora.alpha, llm.finetune.lora.dropout,
                           llm.finetune.lora.target_modules)
        strength, chosen = SUITE.tuned_target_phase_of(model, snapshot(model), label, params=llm,
                                                       tokenizer=llm_tokenizer, target=llm_target, run=run)
        validation_scores[label] = chosen["validation_macro_f1"][f"{chosen['learning_rate']:g}"]  # the kept rate's
        test = class_probabilities(model, llm_target["test"], llm_tokenizer, llm.evaluate.batch_size)

        def trained_logits(split_rows, model=model, strength=strength):
            tokenized = task.tokenize(split_rows, llm_tokenizer, llm, "rows")["rows"]
            return SUITE.logit_adjusted(class_probabilities(model, tokenized, llm_tokenizer, llm.evaluate.batch_size),
                                        train_priors, strength)
        teachers[label] = trained_logits
        return {"test": np.exp(SUITE.logit_adjusted(test, train_priors, strength)), **chosen}

    def lora_target_only() -> None:
        started = time.perf_counter()
        set_seed(seed)
        result = lora_target_phase(load_classifier(str(converted), llm), "lora_target_only")
        finish(("lora_target_only", result.pop("test"), time.perf_counter() - started, result))

    def lora_sequential() -> None:
        started = time.perf_counter()
        adapted = scratch / name / str(seed) / "adapted"
        unlabeled = [r["text"] for split in ("train", "unlabeled") for r in kept["target"][split]]
        general = [r["text"] for r in kept["source"]["validation"]][:llm.pretrain_domain.forgetting_texts]
        record["extra"]["continued_pretraining"] = adapt_causal(llm, str(converted), unlabeled, general, adapted, run,
                                                                scratch / "curves.csv")
        pretraining_seconds = time.perf_counter() - started
        set_seed(seed)
        model = load_classifier(str(adapted), llm)
        model = apply_lora(model, llm.finetune.lora.r, llm.finetune.lora.alpha, llm.finetune.lora.dropout,
                           llm.finetune.lora.target_modules)
        train_phase(model, llm_tokenizer, llm_data["source"]["train"], None, task=task, params=llm,
                    epochs=llm.finetune.source_epochs, learning_rate=llm.finetune.source_learning_rate, run=run,
                    phase="lora_source")
        result = lora_target_phase(merge_lora(model), "lora_sequential")
        finish(("lora_sequential", result.pop("test"), time.perf_counter() - started,
                {"continued_pretraining_seconds": round(pretraining_seconds, 1), **result}))

    minilm_teacher_dir = scratch / name / str(seed) / "minilm_sequential"

    def minilm_sequential() -> None:
        """bench/transfer.py's sequential: TAPT on the unlabeled target text, the source phase, the tuned target
        phase; saved as the pipeline's models/target would be (the teacher of today's student)."""
        started = time.perf_counter()
        domain_dir = scratch / name / str(seed) / "minilm_domain"
        adapt(minilm, minilm_base, [r["text"] for r in kept["target"]["unlabeled"]], [], domain_dir, minilm_run,
              scratch / "tapt_curves.csv")
        set_seed(seed)
        model = load_classifier(str(domain_dir), minilm)
        train_phase(model, minilm_tokenizer, minilm_data["source"]["train"], None, task=task, params=minilm,
                    epochs=minilm.finetune.source_epochs, learning_rate=minilm.finetune.source_learning_rate,
                    run=minilm_run, phase="minilm_source")
        strength, chosen = SUITE.tuned_target_phase_of(model, snapshot(model), "minilm_sequential", params=minilm,
                                                       tokenizer=minilm_tokenizer, target=target, run=minilm_run)
        test = class_probabilities(model, target["test"], minilm_tokenizer, minilm.evaluate.batch_size)
        model.config.transfer_strategy = "sequential"
        model.save_pretrained(minilm_teacher_dir)
        minilm_tokenizer.save_pretrained(minilm_teacher_dir)

        def trained_logits(split_rows, model=model, strength=strength):
            tokenized = task.tokenize(split_rows, minilm_tokenizer, minilm, "rows")["rows"]
            return SUITE.logit_adjusted(class_probabilities(model, tokenized, minilm_tokenizer,
                                                            minilm.evaluate.batch_size), train_priors, strength)
        teachers["minilm_sequential"] = trained_logits
        finish(("minilm_sequential", np.exp(SUITE.logit_adjusted(test, train_priors, strength)),
                time.perf_counter() - started, chosen))

    arms = {"zero_shot": lambda: prompted("zero_shot"), "few_shot": lambda: prompted("few_shot"),
            "lora_target_only": lora_target_only, "lora_sequential": lora_sequential}
    wanted_arms = {method for method in METHODS if wanted(method)}
    saved_baseline = record["arms"].get("target_only", {})
    if saved_baseline.get("predicted") is None:
        target_only()
        if saved_baseline:  # run again for a record_of_finished: the saved arms' gains are over the first run
            again, before = scorer.results["target_only"][primary], saved_baseline["result"][primary]
            record["extra"]["target_only_run_again"] = {primary: again, "saved": before}
            if again != before:  # other float digits on another machine can flip a prediction
                print(f"  target_only run again scores {again:.4f}, saved {before:.4f}: the new arms' gains are "
                      "over the new run", flush=True)
    for method, arm in arms.items():
        if method in wanted_arms:
            arm()

    def distilled_student(method: str, teacher_logits, teacher_dir: Path, student_params: Params,
                          **extra) -> None:
        """`method`: a MiniLM student of `teacher_logits` over the 100 labels, STUDENT_UNLABELED unlabeled texts
        and validation; its seconds are the teacher's outputs and the student's training."""
        started = time.perf_counter()
        unlabeled_rows = kept["target"]["unlabeled"][:STUDENT_UNLABELED]
        distilled = {"train": kept["target"]["train"], "unlabeled": unlabeled_rows,
                     "validation": kept["target"]["validation"]}
        logits = {}
        for split_rows in distilled.values():
            logits |= dict(zip([r["id"] for r in split_rows], teacher_logits(split_rows).tolist(), strict=True))
        teacher_seconds = time.perf_counter() - started
        student, student_tokenizer, origin = train_student(student_params, task, teacher_dir, distilled, logits,
                                                           scratch / name / str(seed) / method, run, phase=method)
        probabilities = class_probabilities(student, target["test"], student_tokenizer, minilm.evaluate.batch_size)
        finish((method, probabilities, time.perf_counter() - started,
                {**extra, "student": origin, "student_parameters": student.num_parameters(),
                 "teacher_seconds": round(teacher_seconds, 1), "unlabeled_texts": len(unlabeled_rows)}))

    if "student" in wanted_arms and validation_scores:
        teacher = max(validation_scores, key=validation_scores.__getitem__)
        while teacher not in teachers:  # finished by an earlier process: prompting rebuilds it; training reruns it
            print(f"  the student's teacher {teacher} was run by an earlier process: rebuilding it", flush=True)
            arms[teacher]()  # a prompted arm not wanted again only registers itself as a teacher
            teacher = max(validation_scores, key=validation_scores.__getitem__)  # a rerun may score otherwise
        student_params = minilm.model_copy(update={"distill": minilm.distill.model_copy(update={"student": "auto"})})
        distilled_student("student", teachers[teacher], converted, student_params, teacher=teacher)

    if wanted("minilm_sequential") or wanted("minilm_student"):
        minilm_sequential()
    if wanted("minilm_student"):  # distill's defaults: student auto = layers 0, 2, 4 of the teacher
        distilled_student("minilm_student", teachers["minilm_sequential"], minilm_teacher_dir, minilm,
                          teacher="minilm_sequential")

    scorer.gains(seed)
    return {"pair": name, "seed": seed, "primary": primary, "sizes": sizes, "methods": scorer.results,
            "head_to_head": head_to_head(scorer, primary, seed), **record["extra"]}


def head_to_head(scorer, primary: str, seed: int) -> dict:
    """The two questions item 4 of the LLM issue asks, paired on the scored rows: does SmolLM2's trained path
    beat the default (MiniLM sequential), does its student beat today's (MiniLM's own student)?"""
    actual, n_classes = scorer.actual, scorer.n_classes
    metric = {"accuracy": lambda a, p: float(np.mean(a == p)),
              "macro_f1": lambda a, p: macro_f1(a, p, n_classes)}[primary]
    compared = {}
    for method, other in HEAD_TO_HEAD:
        if method in scorer.predicted and other in scorer.predicted:
            ours, theirs = scorer.predicted[method], scorer.predicted[other]
            interval = paired_bootstrap(lambda pos, p=ours: metric(actual[pos], p[pos]),
                                        lambda pos, p=theirs: metric(actual[pos], p[pos]), len(actual),
                                        resamples=1000, seed=seed, points=100.0)
            compared[f"{method} - {other}"] = {
                "difference_points": round(100 * (scorer.results[method][primary] - scorer.results[other][primary]), 2),
                "ci95_points": interval["gain_ci95_points"], "significant": interval["significant"]}
    return compared


@functools.cache
def scored_labels(name: str, seed: int, test_ids: tuple[str, ...]) -> np.ndarray:
    """The true class ids of a run's scored test rows, read again from the pair's data (the arms file keeps
    each arm's predictions, not the labels); once per process."""
    source_spec, target_spec, labels = SUITE.PAIRS[name]
    rows = {row["id"]: row for row in SUITE.pair_rows(
        SUITE.scenario_params(source_spec, target_spec, labels, seed))["target"]["test"]}
    return np.asarray([labels.index(rows[row_id]["label"]) for row_id in test_ids])


def pooled_differences(runs: list[dict], arms: dict, resamples: int = 2000, seed: int = 0,
                       labels_of=scored_labels) -> list[dict]:
    """Each head-to-head (HEAD_TO_HEAD) pooled over the seeds of a pair, and over the pairs: the mean
    difference in points, and a 95% interval from a bootstrap that draws, per pair, its seeds with
    replacement and, within each drawn seed, its scored rows (the pairs stay as they are: they are the suite,
    not a sample). Seeds give each run its own scored rows, so the rows are drawn per run; as the spread
    between seeds already holds some of the rows' noise, the interval errs wide. "all pairs" averages each
    pair's primary metric (accuracy or macro-F1) as the suite's mean-gain row does. Only runs with both
    arms' predictions take part; each run's scores are recomputed from them (`labels_of(pair, seed, test
    ids)`: the true class ids) and checked against the saved ones."""
    rng = np.random.default_rng(seed)
    pooled = []
    for method, other in HEAD_TO_HEAD:
        per_pair: dict[str, list[tuple]] = {}
        for run in runs:
            record = arms.get(f"{run['pair']}/{run['seed']}", {}).get("arms", {})
            if not all((record.get(m) or {}).get("predicted") is not None for m in (method, other)):
                continue
            actual = labels_of(run["pair"], run["seed"], tuple(arms[f"{run['pair']}/{run['seed']}"]["test_ids"]))
            n_classes = len(SUITE.PAIRS[run["pair"]][2])
            metric = {"accuracy": lambda a, p: float(np.mean(a == p)),
                      "macro_f1": lambda a, p, k=n_classes: macro_f1(a, p, k)}[run["primary"]]
            ours, theirs = (np.asarray(record[m]["predicted"]) for m in (method, other))
            for name, predicted in ((method, ours), (other, theirs)):
                saved = run["methods"][name][run["primary"]]
                if abs(metric(actual, predicted) - saved) > 1e-9:
                    raise RuntimeError(f"{run['pair']} {run['seed']} {name}: the saved predictions score "
                                       f"{metric(actual, predicted):.4f}, the run recorded {saved:.4f}")
            per_pair.setdefault(run["pair"], []).append((actual, ours, theirs, metric))
        if not per_pair:
            continue

        def pair_mean(pair_runs: list[tuple], draw: bool) -> float:
            chosen = [pair_runs[i] for i in rng.integers(0, len(pair_runs), len(pair_runs))] if draw else pair_runs
            differences = []
            for actual, ours, theirs, metric in chosen:
                rows = rng.integers(0, len(actual), len(actual)) if draw else np.arange(len(actual))
                differences.append(metric(actual[rows], ours[rows]) - metric(actual[rows], theirs[rows]))
            return 100 * float(np.mean(differences))

        estimates = {pair: pair_mean(pair_runs, False) for pair, pair_runs in per_pair.items()}
        draws = {pair: np.array([pair_mean(pair_runs, True) for _ in range(resamples)])
                 for pair, pair_runs in per_pair.items()}
        scopes = [(pair, [pair]) for pair in per_pair] + ([("all pairs", list(per_pair))] if len(per_pair) > 1 else [])
        for scope, pairs in scopes:
            resampled = np.mean([draws[pair] for pair in pairs], axis=0)
            low, high = np.percentile(resampled, [2.5, 97.5])
            pooled.append({"comparison": f"{method} - {other}", "scope": scope,
                           "seeds": {pair: len(per_pair[pair]) for pair in pairs},
                           "difference_points": round(float(np.mean([estimates[p] for p in pairs])), 2),
                           "ci95_points": [round(float(low), 2), round(float(high), 2)],
                           "significant": bool(low > 0 or high < 0)})
    return pooled


def pooled_rows(pooled: list[dict]) -> str:
    if not pooled:
        return ""
    lines = [f"| {p['comparison']} | {p['scope']} | {', '.join(str(n) for n in p['seeds'].values())} | "
             f"{p['difference_points']:+.1f} [{p['ci95_points'][0]:+.1f}, {p['ci95_points'][1]:+.1f}]"
             f"{'*' if p['significant'] else ''} |" for p in pooled]
    return ("\n\nHead to head, pooled over seeds (and over pairs): mean difference in points of each pair's "
            "metric [95% interval of a bootstrap over seeds and, within each, the scored rows (it errs wide); "
            "* excludes 0]; runs without both arms' predictions are left out:\n\n"
            "| comparison | scope | seeds | difference |\n|---|---|---|---:|\n"
            + "\n".join(lines) + "\n")


def suite_rows(runs: list[dict], reference: Path) -> str:
    """MiniLM sequential from the suite's own runs (the full test split) for the same pairs and seeds."""
    if not reference.exists():
        return ""
    wanted = {(r["pair"], r["seed"]) for r in runs}
    suite = [r for r in json.loads(reference.read_text())["runs"] if (r["pair"], r["seed"]) in wanted]
    lines = []
    for pair in dict.fromkeys(r["pair"] for r in runs):
        gains = [(r["seed"], r["methods"]["sequential"]) for r in suite if r["pair"] == pair]
        cells = ", ".join(f"seed {seed}: {result['gain_points']:+.1f} [{result['gain_ci95_points'][0]:+.1f}, "
                          f"{result['gain_ci95_points'][1]:+.1f}]" for seed, result in gains)
        lines.append(f"- {pair}: {cells or 'not in ' + reference.name}")
    return ("\n\nMiniLM sequential (the default recipe), gain over its target_only on the full test split "
            f"(`{reference.relative_to(BENCH.parent)}`):\n\n" + "\n".join(lines) + "\n")


def pretraining_rows(runs: list[dict]) -> str:
    lines = []
    for r in runs:
        if metrics := r.get("continued_pretraining"):
            forgetting = metrics.get("forgetting", {})
            lines.append(f"| {r['pair']} | {r['seed']} | {metrics['before']['perplexity']:.1f} | "
                         f"{metrics['after']['perplexity']:.1f} | "
                         f"{forgetting.get('before', {}).get('perplexity', float('nan')):.1f} | "
                         f"{forgetting.get('after', {}).get('perplexity', float('nan')):.1f} |")
    if not lines:
        return ""
    return ("\n\nContinued pretraining of SmolLM2 on the target text (lora_sequential's first step): held-out target "
            "perplexity and source-text perplexity (forgetting) before and after.\n\n| pair | seed | target before | "
            "target after | source before | source after |\n|---|---|---:|---:|---:|---:|\n" + "\n".join(lines) + "\n")


def interval_rows(runs: list[dict]) -> str:
    """Each arm's gain over MiniLM target_only with its paired 95% interval, per pair and seed."""
    methods = [m for m in TABLE_ORDER if m != "target_only" and any(m in r["methods"] for r in runs)]

    def cell(result: dict | None) -> str:
        if not result or "gain_points" not in result:
            return ""
        low, high = result["gain_ci95_points"]
        return f"{result['gain_points']:+.1f} [{low:+.1f}, {high:+.1f}]{'*' if result['significant'] else ''}"
    lines = [f"| {m} | " + " | ".join(cell(r["methods"].get(m)) for r in runs) + " |" for m in methods]
    header = " | ".join(f"{r['pair']} {r['seed']}" for r in runs)
    return ("\n\nGain over MiniLM target_only in points [paired-bootstrap 95% interval over the scored test rows; "
            "* excludes 0], per pair and seed:\n\n| arm | " + header + " |\n|---" + "|---:" * len(runs) + "|\n"
            + "\n".join(lines) + "\n")


def head_to_head_rows(runs: list[dict]) -> str:
    lines = [f"- {r['pair']} {r['seed']}: " + "; ".join(
        f"{pair} {c['difference_points']:+.1f} [{c['ci95_points'][0]:+.1f}, {c['ci95_points'][1]:+.1f}]"
        f"{'*' if c['significant'] else ''}" for pair, c in r["head_to_head"].items())
        for r in runs if r.get("head_to_head")]
    if not lines:
        return ""
    return ("\n\nHead to head, in points [paired 95% interval; * excludes 0] (a run whose arms ran before their "
            "predictions were saved has none):\n\n" + "\n".join(lines) + "\n")


ALONE = "the machine to itself"


def cost_rows(runs: list[dict]) -> str:
    """Each arm's wall time; a time taken while the machine did other work too is marked, and the marks say
    what (each arm's `timing`, from --timing-note; a run saved before arms had one: the run's note)."""
    methods = list(dict.fromkeys(m for r in runs for m in r["methods"] if not m.endswith("_raw")))
    marks: dict[str, str] = {}

    def cell(run: dict, method: str) -> str:
        if method not in run["methods"]:
            return ""
        result = run["methods"][method]
        note = result.get("timing") or run.get("timing_note") or ALONE
        mark = "" if note == ALONE else marks.setdefault(note, chr(ord("a") + len(marks)))
        return f"{result['seconds']:.0f}" + (f" ({mark})" if mark else "")
    lines = [f"| {m} | " + " | ".join(cell(r, m) for r in runs) + " |" for m in methods]
    header = " | ".join(f"{r['pair']} {r['seed']}" for r in runs)
    legend = "".join(f"\n- ({mark}) {note}: an upper bound" for note, mark in marks.items())
    return (f"\n\nWall time of each arm, seconds on 2 cores with {ALONE} unless marked:\n\n| arm | {header} |\n|---"
            + "|---:" * len(runs) + "|\n" + "\n".join(lines) + "\n" + legend + ("\n" if legend else ""))


def write_results(cli, runs: list[dict], provenance: dict, arms: dict) -> None:
    """--out (the runs, their summary, the pooled head-to-heads) and its .md table, with the command that made
    them. `arms`: the .arms.json records (each arm's predictions)."""
    summary = SUITE.summarize(runs)
    pooled = pooled_differences(runs, arms)
    cli.out.write_text(json.dumps({"model": LLM, "provenance": provenance, "recipe": RECIPE_BENCH.RECIPE,
                                   "settings": SUITE_SETTINGS + cli.settings, "test_size": cli.test_size,
                                   "student_unlabeled": STUDENT_UNLABELED, "summary": summary,
                                   "pooled_head_to_head": pooled, "runs": runs}, indent=2) + "\n")
    table = (SUITE.markdown(summary, None).rstrip() + interval_rows(runs) + head_to_head_rows(runs)
             + pooled_rows(pooled) + suite_rows(runs, BENCH / "transfer_tuned.json") + pretraining_rows(runs)
             + cost_rows(runs))
    command = ("python bench/llm_suite.py --pairs " + " ".join(cli.pairs) + " --seeds "
               + " ".join(map(str, cli.seeds)) + f" --test-size {cli.test_size}"
               + (" --methods " + " ".join(cli.methods) if cli.methods != list(METHODS) else "")
               + (" --smoke" if cli.smoke else "")
               + "".join(f" -S {setting}" for setting in cli.settings))
    cli.out.with_suffix(".md").write_text(f"Made by `{command}`.\n\n{table}")
    if cli.out == BENCH / "llm_suite.json":  # docs/decoders.md shows the tables, never a copy by hand
        headline = (SUITE.markdown(summary, None).rstrip() + interval_rows(runs) + head_to_head_rows(runs)
                    + pooled_rows(pooled))
        write_between_markers(DOCS, f"Made by `{command}` (bench/llm_suite.md).\n\n{headline}")


def write_between_markers(path: Path, text: str) -> None:
    """`text` in place of what stands between the file's DOCS_MARKERS."""
    start, end = DOCS_MARKERS
    page = path.read_text()
    if start not in page or end not in page:
        raise RuntimeError(f"{path}: no {start} ... {end} to write the table between")
    before, rest = page.split(start, 1)
    path.write_text(f"{before}{start}\n{text.strip()}\n{end}{rest.split(end, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", choices=list(SUITE.PAIRS),
                        default=["tweets-to-drugs", "imdb-to-drugs", "tweets-to-airline"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43])
    parser.add_argument("--methods", nargs="*", choices=METHODS, default=list(METHODS),
                        help="which arms beyond MiniLM target_only (always run) to run; default: all")
    parser.add_argument("--test-size", type=int, default=300, help="test examples every arm is scored on")
    parser.add_argument("--out", type=Path, default=BENCH / "llm_suite.json")
    parser.add_argument("--resume", action="store_true", help="keep the runs in --out; run the missing ones")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets: checks the harness, not the methods")
    parser.add_argument("--timing-note", default=ALONE,
                        help="how the run shared the machine (goes into the table's cost line)")
    parser.add_argument("-S", "--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a params setting for the SmolLM2 arms on top of the recipe's (as dvc exp run -S)")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: write --out's .md again from its runs (after editing a timing note)")
    cli = parser.parse_args()
    if cli.table_only:
        saved_results = json.loads(cli.out.read_text())
        arms_file = cli.out.with_name(cli.out.stem + ".arms.json")
        write_results(cli, saved_results["runs"], saved_results["provenance"],
                      json.loads(arms_file.read_text()) if arms_file.exists() else {})
        print(cli.out.with_suffix(".md").read_text())
        return
    runs = json.loads(cli.out.read_text())["runs"] if cli.resume and cli.out.exists() else []
    arms_file = cli.out.with_name(cli.out.stem + ".arms.json")
    saved = json.loads(arms_file.read_text()) if cli.resume and arms_file.exists() else {}
    wanted = set(cli.methods) | {"target_only"}

    def save_arms(key: str, record: dict) -> None:
        saved[key] = record
        written = arms_file.with_suffix(".tmp")
        written.write_text(json.dumps(saved) + "\n")
        written.replace(arms_file)  # a kill mid-write leaves the last complete file

    with tempfile.TemporaryDirectory(prefix="llm-suite-") as scratch:
        converted = Path(scratch) / "smollm2"
        provenance = convert_gguf(gguf_source(LLM), converted)
        for seed in cli.seeds:
            for name in cli.pairs:
                finished = next((r for r in runs if (r["pair"], r["seed"]) == (name, seed)), None)
                if finished and wanted <= set(finished["methods"]):
                    continue
                key = f"{name}/{seed}"
                record = saved.get(key) or (record_of_finished(finished) if finished else None)
                result = run_pair(name, seed, Path(scratch), converted, set(cli.methods), cli.test_size, cli.smoke,
                                  cli.settings, record, lambda record, key=key: save_arms(key, record),
                                  cli.timing_note)
                result = {"timing_note": cli.timing_note, **result}  # a note the saved record holds wins
                result["methods"] = dict(sorted(result["methods"].items(), key=lambda item: TABLE_ORDER.index(item[0])))
                runs = [result if r is finished else r for r in runs] if finished else [*runs, result]
                write_results(cli, runs, provenance, saved)
    print(cli.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
