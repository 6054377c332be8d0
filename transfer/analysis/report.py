"""The run's numbers for a reader: a short summary for the terminal and the Markdown results page.

`dvc metrics show` puts every metrics file into one very wide table; this reads the numbers a user
looks at first from metrics/*.json, so no figure in the documentation is copied by hand.
"""

from __future__ import annotations

from pathlib import Path

from transfer.analysis.evaluation import arm_words, interval_words
from transfer.core.artifacts import read_json
from transfer.core.switches import was_run
from transfer.tasks.registry import get_task

METRICS = Path("metrics")


def load(name: str) -> dict:
    path = METRICS / name
    return read_json(path) if path.exists() else {}


def strategy_words(evaluation: dict) -> str:
    """finetune.strategy, and for auto what it chose on which cross-validated scores."""
    selection = evaluation.get("selection")
    if not selection:
        return evaluation["strategy"]
    scores = ", ".join(f"{name} {score['pooled']:.3f}" for name, score in selection["scores"].items())
    guard = "; no candidate above the baseline recipe, which ships" if selection["guard_applied"] else ""
    return (f"{evaluation['strategy']}: {selection['chosen']} ({selection['folds']}-fold cross-validated "
            f"{selection['score']}: {scores}{guard})")


def lever_words(evaluation: dict) -> str:
    """What finetune's levers did to the shipped model ('' when none acted): a default-on lever changes the
    predictions, so the summary says so."""
    described = {"logit_adjustment": lambda c: f"logit adjustment tau={c['strength']:g} chosen on validation",
                 "weight_ensembling": lambda c: f"WiSE-FT mix={c['mix']:g}",
                 "abstention": lambda c: ("never abstains (no unanswerable validation question)"
                                          if c.get("null_score_threshold") is None else
                                          f"abstains where null - best span score > "
                                          f"{c['null_score_threshold']:.3g} (chosen on validation)"),
                 "setfit": lambda c: f"SetFit pairs of {c.get('source_examples', 0)} source and "
                                     f"{c['target_examples']} target examples"}
    words = [described.get(name, lambda c, n=name: n.replace("_", " "))(chosen)
             for name, chosen in (evaluation.get("levers") or {}).items()
             if not (isinstance(chosen, dict) and "skipped" in chosen)]
    return f"; levers: {', '.join(words)}" if words else ""


def print_summary() -> None:
    evaluation = read_json(METRICS / "eval.json")
    task = evaluation.get("task", "classification")
    metric = get_task(task).primary
    name_of = get_task(task).metrics[metric]
    print(f"\nTask {task}. Target test split: {evaluation['test_examples']} examples; chosen strategy: "
          f"{strategy_words(evaluation)} (domain pretraining {'on' if evaluation['pretrain_domain'] else 'off'}"
          f"{lever_words(evaluation)})")
    clean = read_json(METRICS / "clean.json") if (METRICS / "clean.json").exists() else {}
    budget = clean.get("labeled_budget", {}).get("target")
    if budget:
        print(f"Labeled target train examples: {budget['used']} (data.target_train_labeled: {budget['requested']}; "
              f"{budget['valid']} valid after cleaning)")
    for warning in clean.get("warnings", []):
        print(f"WARNING (clean): {warning}")
    rows = read_json(METRICS / "compare.json") if (METRICS / "compare.json").exists() else {}
    compared = was_run(rows)
    if compared:
        print(f"\n{'model':<24}{name_of:>10}{'gain (pts)':>12}  {'95% interval':<34}negative transfer")
    else:
        print(f"\nStrategies side by side: not run ({rows['reason']})")
        rows = {}
    for name, row in rows.items():
        spread = f" ± {row[f'{metric}_std']:.3f}" if row["seeds"] > 1 else ""
        flag = "YES" if row["negative_transfer"] else ""
        print(f"{name:<24}{row[metric]:>10.3f}{row[f'gain_{metric}_points']:>+12.2f}  {interval_cell(row):<34}"
              f"{flag}{spread}")
    if "gain_ci95_points" in evaluation:
        print(f"\nHeadline gain over the baseline: {evaluation[f'gain_{metric}_points']:+.2f} {name_of} points "
              f"{interval_words(evaluation)}: {seeds_words(evaluation)}")
        for arm, label in ARM_LABELS:
            print(f"  {label}: {name_of} {arm_words(evaluation[arm], metric)}; {tuning_words(evaluation[arm])}")
    if "trivial_baseline" in evaluation:
        print(f"  {trivial_words(evaluation['trivial_baseline'], metric, name_of)}")
    for warning in evaluation.get("warnings", []):
        print(f"WARNING (evaluate): {warning}")
    budget = read_json(METRICS / "label_budget.json") if (METRICS / "label_budget.json").exists() else {}
    if not budget.get("measured", True):
        print(f"\nLabel budget: {budget['note']}")
    elif budget:
        curve = "  ".join(f"{n}: {budget['curve']['target_only'][n]:.3f} / {budget['curve']['transfer'][n]:.3f}"
                          for n in sorted(budget["curve"]["target_only"], key=int))
        print(f"\nLabel budget (train + validation labels: target_only / {budget['strategy']} {name_of}, "
              f"{budget_seed_words(budget)})  {curve}")
        for n, interval in budget.get("gain_ci95", {}).items():
            print(f"  {n} labels: gain {budget['gain_points'][n]:+.2f} points {interval_cell(interval)}")
        if "dropped_note" in budget:
            print(f"  {budget['dropped_note']}")
        print(f"  {labels_saved_words(budget, name_of)}")
        for warning in budget.get("warnings", []):
            print(f"WARNING (label_budget): {warning}")
    pretrain = read_json(METRICS / "pretrain.json")
    if pretrain.get("enabled"):
        print(f"\nTAPT held-out {objective_name(pretrain)} loss: {pretrain['before']['loss']:.3f} -> "
              f"{pretrain['after']['loss']:.3f}; {forgetting_words(pretrain)}")
    distill = read_json(METRICS / "distill.json") if (METRICS / "distill.json").exists() else {}
    if distill and not distill.get("applicable", True):
        print(f"Distilled student: not run ({distill['reason']})")
    elif distill:
        print(f"Distilled student: {distill['student']['layers']} layers, {distill['size_ratio']:.0%} of the "
              f"parameters, macro-F1 {distill['student']['macro_f1']:.3f} ({distill['quality_retained']:.0%} kept)")
    prompting = read_json(METRICS / "prompting.json") if (METRICS / "prompting.json").exists() else {}
    if not was_run(prompting):
        print(f"Prompting: not run ({prompting['reason']})")
    elif prompting.get("applicable") and not compared:  # compare's table would have shown them
        print("Prompting (no training; metrics/prompting.json): " + ", ".join(
            f"{method} {name_of} {prompting[method][metric]:.3f}" for method in PROMPTED if method in prompting))
    domain = read_json(METRICS / "domain.json") if (METRICS / "domain.json").exists() else {}
    if not was_run(domain):
        print(f"Domain shift: not run ({domain['reason']})")
    elif domain:
        shift = "  ".join(f"{name}: PAD {e['proxy_a_distance']:.2f} MMD² {e['mmd2']:.3f}"
                          for name, e in domain["embeddings"].items())
        print(f"Domain shift ({domain['sample_per_domain']} held-out texts a domain)  {shift}")
        print(f"  vocabulary overlap {domain['text']['vocabulary_overlap']:.2f}, JS divergence "
              f"{domain['text']['js_divergence']:.2f}, target words split by the tokenizer "
              f"{domain['tokenizer']['target']['split_word_rate']:.0%}")
    print("\nMore: dvc metrics show metrics/eval.json | dvc plots show | README 'What you get'")


ARM_LABELS = (("target", "transferred"), ("baseline", "target_only baseline"))
PROMPTED = ("zero_shot", "few_shot")


def verdict(row: dict, prefix: str = "") -> str:
    """"significant", "not significant", or why no claim is made (one training seed)."""
    significant = row.get(f"{prefix}significant")
    if significant is None:
        return row.get(f"{prefix}significance_note", "no significance claim")
    return "significant" if significant else "not significant"


def interval_cell(row: dict) -> str:
    """A compare row's gain interval and whether it is significant ("" for the baseline itself)."""
    if "gain_ci95_points" not in row:
        return ""
    low, high = row["gain_ci95_points"]
    return f"[{low:+.2f}, {high:+.2f}] {verdict(row)}"


def seeds_words(evaluation: dict) -> str:
    seeds = evaluation.get("training_seeds", {})
    counts = f"{len(seeds.get('target', [1]))} / {len(seeds.get('baseline', [1]))}"
    return f"bootstrap over the test examples and the training seeds ({counts}: transferred / baseline)"


def trivial_words(trivial: dict, metric: str, name_of: str) -> str:
    return f"for scale, {trivial['name']} (a constant, no training): {name_of} {trivial[metric]:.4f}"


def tuning_words(arm: dict) -> str:
    """What an arm chose on validation: its learning rate (of the grid), epochs and logit adjustment per seed."""
    grid = arm.get("learning_rate_validation_scores")
    rate = f"learning rate {arm.get('learning_rate')}" + (
        " (validation " + ", ".join(f"{k}: {v:.3f}" for k, v in grid.items()) + ")" if grid else "")
    epochs = ", ".join(str(e) for e in (arm.get("best_epoch") or {}).values())
    taus = ", ".join(str(t) for t in (arm.get("logit_adjustment") or {}).values())
    words = f"{rate}; epoch kept per seed {epochs or 'n/a'}; logit adjustment per seed {taus or 'n/a'}"
    if "abstention_threshold" in arm:  # QA: None = never abstains (no unanswerable validation question)
        thresholds = ", ".join("never" if t is None else f"{t:g}" for t in arm["abstention_threshold"].values())
        words += f"; abstains where null - best span score exceeds (per seed) {thresholds}"
    return words


def budget_seed_words(budget: dict) -> str:
    seeds = budget.get("seeds")
    if isinstance(seeds, dict):
        return "seeds a point " + ", ".join(f"{n}: {k}" for n, k in seeds.items())
    return f"{seeds} seed(s) a point"


def labels_saved_words(budget: dict, name_of: str) -> str:
    """Labels saved with its interval, or that it is not established at these seeds."""
    interval = budget.get("labels_saved_ci95")
    bounds = f" (95% CI {interval[0]:.0f} to {interval[1]:.0f})" if interval else ""
    if budget["labels_saved"] is None:
        return budget["note"] + bounds
    bound = "at least " if budget["labels_saved_is_lower_bound"] else ""
    claim = ("established" if budget.get("labels_saved_established")
             else "not established at these seeds")
    return (f"{budget['strategy']} reaches target_only's full-budget {name_of} with "
            f"{budget['transfer_labels_needed']:.0f} train + validation labels: point estimate {bound}"
            f"{budget['labels_saved']:.0f} labels saved{bounds}, {claim}")


def table(header: list[str], rows: list[list]) -> list[str]:
    cells = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in cells)]


def results_page() -> str:
    """docs/results.md: every headline figure of the last run, each with the metrics file it comes from."""
    evaluation = read_json(METRICS / "eval.json")
    task = evaluation.get("task", "classification")
    metric_names = get_task(task).metrics
    metrics = list(metric_names)
    primary, name_of = metrics[0], metric_names[metrics[0]]
    compare, budget, clean = load("compare.json"), load("label_budget.json"), load("clean.json")
    seeds = min(len(v) for v in evaluation.get("training_seeds", {"": [1]}).values())
    lines = ["# Results of the last run",
             "",
             "Written by `python -m stages.report --markdown docs/results.md` (the `report` stage of `dvc repro`) from "
             "`metrics/*.json`; do not edit by hand. "
             f"Task **{task}**; target test split: **{evaluation['test_examples']} examples**; chosen strategy: "
             f"**{strategy_words(evaluation)}**, domain pretraining "
             f"{'on' if evaluation['pretrain_domain'] else 'off'}{lever_words(evaluation)}.",
             ""]
    if seeds == 1:
        lines += ["**One seed: no significance claim.** Differences of a few points between single-seed runs are "
                  "within seed noise; set `finetune.seed_offsets` (and `compare.seeds`, `label_budget.seeds`) "
                  "for spreads before reading a gain.", ""]
    lines += ["## Target test quality (`metrics/eval.json`)", "",
              f"Mean ± standard deviation over the training seeds; per-class F1 of the seed-{first_seed(evaluation)} "
              "models (the confusion matrices of `dvc plots show`).", ""]
    main = first_seed(evaluation)
    per_class = sorted(evaluation["target"]["seeds"][main].get("per_class", {}))
    header = ["model", "seeds", *(metric_names[m] for m in metrics), *(f"F1 {label}" for label in per_class)]
    models = (("target", f"{evaluation['strategy']} (transferred)"), ("baseline", "target_only baseline"))
    rows = [[label, len(evaluation[model]["seeds"]), *(arm_words(evaluation[model], m) for m in metrics),
             *(evaluation[model]["seeds"][main]["per_class"][c]["f1"] for c in per_class)] for model, label in models]
    if "trivial_baseline" in evaluation:  # the floor: a model at or below it learned nothing the scores show
        trivial = evaluation["trivial_baseline"]
        rows.append([f"{trivial['name']} (constant, no training)", "", *(f"{trivial[m]:.4f}" for m in metrics),
                     *("" for _ in per_class)])
    lines += table(header, rows)
    lines += ["", "Chosen on target validation, the same way for both arms:", ""]
    lines += [f"- {label}: {tuning_words(evaluation[model])}." for model, label in models]
    gains = ", ".join(f"{evaluation[f'gain_{m}_points']:+.2f} {metric_names[m]} points" for m in metrics
                      if f"gain_{m}_points" in evaluation)
    interval = (f" The {name_of} gain {interval_words(evaluation)}: {seeds_words(evaluation)} "
                f"({evaluation['bootstrap_resamples']} resamples)."
                if "gain_ci95_points" in evaluation else "")
    lines += ["", f"Gain of the means over the baseline: {gains}; negative transfer: "
                  f"{'yes' if evaluation['negative_transfer'] else 'no'}.{interval}", ""]
    if "gain_ci95_points" in evaluation:
        lines += ["The interval does not cover the draw of which target examples are labeled (nor the source "
                  "subsample, TAPT and the source phase, all drawn once per `seed`): another `seed` can move the "
                  "gain by more (`bench/seed_reruns.md`).", ""]
    lines += [f"- **Warning:** {warning}" for warning in evaluation.get("warnings", [])]
    if evaluation.get("warnings"):
        lines.append("")
    if clean:
        lines += ["## Training data (`metrics/clean.json`)", ""]
        for domain, entry in clean.get("labeled_budget", {}).items():
            lines.append(f"- {domain} train examples: {entry['used']} used of {entry['valid']} valid after cleaning "
                         f"(asked for: {entry['requested']}).")
        lines += [f"- Warning: {warning}" for warning in clean.get("warnings", [])]
        lines.append("")
    if compare and not was_run(compare):
        lines += ["## Strategies side by side (`metrics/compare.json`)", "", f"Not run: {compare['reason']}.", ""]
    elif compare:
        lines += [f"## Strategies side by side (`metrics/compare.json`, {name_of})", ""]
        lines += table(["model", name_of, "std over seeds", "seeds", "gain (points)", "95% interval",
                        "negative transfer"],
                       [[name, row[primary], row[f"{primary}_std"], row["seeds"],
                         f"{row[f'gain_{primary}_points']:+.2f}", interval_cell(row),
                         "yes" if row["negative_transfer"] else ""]
                        for name, row in compare.items()])
        lines += ["", "Intervals: a bootstrap over the test examples and, where an entry has several seeds, over "
                      "the seeds; a gain whose interval includes 0 is not significant.", ""]
    if budget and not budget.get("measured", True):
        lines += ["## Label budget (`metrics/label_budget.json`)", "", budget["note"] + ".", ""]
    elif budget:
        sizes = sorted(budget["curve"]["target_only"], key=int)
        lines += [f"## Label budget (`metrics/label_budget.json`, {name_of}, {budget_seed_words(budget)})", ""]
        intervals = budget.get("gain_ci95", {})
        train = budget.get("train_labels", {})
        lines += table(["train + validation labels", "of which train", "target_only", budget["strategy"],
                        "gain (points)", "95% interval"],
                       [[n, train.get(n, ""), budget["curve"]["target_only"][n], budget["curve"]["transfer"][n],
                         f"{budget['gain_points'][n]:+.2f}" if "gain_points" in budget else "",
                         interval_cell(intervals[n]) if n in intervals else ""] for n in sizes])
        lines += ["", labels_saved_words(budget, name_of) + "."]
        lines += [f"- **Warning:** {warning}" for warning in budget.get("warnings", [])]
        if "dropped_note" in budget:
            lines += ["", budget["dropped_note"] + "."]
        lines.append("")
    pretrain = load("pretrain.json")
    if pretrain.get("enabled"):
        warm_up = (f"{pretrain['random_head']['loss']:.2f} with the fresh head, {pretrain['before']['loss']:.3f} "
                   f"after the head warm-up (the honest before), " if "random_head" in pretrain
                   else f"{pretrain['before']['loss']:.3f} before, ")
        lines += ["## Domain-adaptive pretraining (`metrics/pretrain.json`)", "",
                  f"Held-out target {objective_name(pretrain)} loss on {pretrain['heldout_texts']} texts: {warm_up}"
                  f"{pretrain['after']['loss']:.3f} after adaptation on {pretrain['train_texts']} texts (perplexity "
                  f"{pretrain['before']['perplexity']:.0f} -> {pretrain['after']['perplexity']:.0f}). "
                  f"{forgetting_words(pretrain).capitalize()}.", ""]
    distill, speed = load("distill.json"), load("distill_speed.json") | load("teacher_speed.json")
    if distill and distill.get("applicable", True):
        lines += ["## Distillation (`metrics/distill.json`, `metrics/*_speed.json`)", ""]
        lines += table(["model", "layers", "parameters", name_of, "inference samples/s"],
                       [[role, distill[role]["layers"], f"{distill[role]['parameters']:,}", distill[role][primary],
                         f"{speed.get(f'{role}_samples_per_second', 0):.1f}"] for role in ("teacher", "student")])
        lines += ["", f"The student ({distill['student'].get('from', 'layers of the teacher')}) keeps "
                      f"{distill['quality_retained']:.0%} of the teacher's {name_of} with "
                      f"{distill['size_ratio']:.0%} of its parameters" + student_gain_words(distill) + ".", ""]
    elif distill:
        lines += ["## Distillation (`metrics/distill.json`)", "", f"Not run: {distill['reason']}.", ""]
    prompting = load("prompting.json")
    if prompting and not was_run(prompting):
        lines += ["## Prompting (`metrics/prompting.json`)", "", f"Not run: {prompting['reason']}.", ""]
    elif prompting.get("applicable") and compare and not was_run(compare):  # compare's table would have them
        lines += ["## Prompting (`metrics/prompting.json`, no training)", ""]
        lines += table(["method", *(metric_names[m] for m in metrics)],
                       [[method, *(prompting[method][m] for m in metrics)] for method in PROMPTED
                        if method in prompting])
        lines.append("")
    domain = load("domain.json")
    if domain and not was_run(domain):
        lines += ["## Domain shift (`metrics/domain.json`)", "", f"Not run: {domain['reason']}.", ""]
    elif domain:
        lines += [f"## Domain shift (`metrics/domain.json`, {domain['sample_per_domain']} held-out texts a domain)", ""]
        lines += table(["encoder checkpoint", "proxy A-distance", "domain classifier error", "MMD²"],
                       [[name, e["proxy_a_distance"], f"{e['domain_classifier_error']:.1%}", e["mmd2"]]
                        for name, e in domain["embeddings"].items()])
        text, tokenizer = domain["text"], domain["tokenizer"]
        lines += ["", f"Vocabulary overlap {text['vocabulary_overlap']:.2f}, JS divergence "
                      f"{text['js_divergence']:.2f}; median length "
                      f"{domain['length_tokens']['source']['median']:.0f} tokens (source) vs "
                      f"{domain['length_tokens']['target']['median']:.0f} (target); the tokenizer splits "
                      f"{tokenizer['source']['split_word_rate']:.0%} of source and "
                      f"{tokenizer['target']['split_word_rate']:.0%} of target words.", ""]
    timing = load("timing.json") | load("budget_timing.json")
    if timing:
        lines += ["## Training wall time (`metrics/timing.json`, `metrics/budget_timing.json`; machine-dependent)",
                  "", "`baseline` and `chosen:*` include every value of the learning-rate grid; `@<seed>` are the "
                      "extra training seeds at the chosen value. Those that start with the source phase "
                      "(sequential, source_only and their label-budget points) start from `source phase`, trained "
                      "once, and their times leave it out.", ""]
        lines += table(["model", "seconds"], [[name, f"{seconds:.1f}"] for name, seconds in timing.items()])
        lines.append("")
    return "\n".join(lines)


def first_seed(evaluation: dict) -> str:
    """The `seed` run's key in each arm's seeds (the models the confusion matrices show)."""
    return str(evaluation["training_seeds"]["target"][0]) if "training_seeds" in evaluation else \
        next(iter(evaluation["target"]["seeds"]))


def objective_name(pretrain: dict) -> str:
    return "causal-LM" if pretrain.get("objective") == "causal_lm" else "MLM"


def forgetting_words(pretrain: dict) -> str:
    """The forgetting figure in words: the loss on general (source) text before -> after adaptation."""
    forgetting = pretrain.get("forgetting")
    if not forgetting or "skipped" in forgetting:
        return f"forgetting not measured ({forgetting['skipped']})" if forgetting else "forgetting not measured"
    return (f"forgetting: loss on {forgetting['texts']} source texts {forgetting['before']['loss']:.3f} -> "
            f"{forgetting['after']['loss']:.3f} ({forgetting['loss_increase']:+.3f})")


def student_gain_words(distill: dict) -> str:
    """", +3.10 points over the target-only baseline (95% CI ..., not significant)", where measured."""
    if "student_gain_over_baseline_points" not in distill:
        return ""
    low, high = distill["student_gain_ci95_points"]
    return (f", {distill['student_gain_over_baseline_points']:+.2f} points over the target-only baseline "
            f"(95% CI {low:+.2f} to {high:+.2f}, {verdict(distill, 'student_')})")

