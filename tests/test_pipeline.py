"""The whole DAG through `dvc repro` on the tiny model, DVC re-running exactly what changed, the plots
as `dvc plots show` draws them, and the README's `dvc exp run` workflow."""

from __future__ import annotations

import csv
import json
import shlex

from huggingface_hub import ModelCard
from transformers import AutoModelForSequenceClassification

from tests.conftest import DvcProject, ran_stages
from tests.readme import readme_command

STAGES = ["base_model", "ingest", "clean", "augment", "tokenize", "pretrain_domain", "finetune_source",
          "finetune_baseline", "finetune_target",
          "evaluate", "compare_train@source_only-42", "prompting", "compare", "budget_baseline@12-42",
          "budget_target@12-42", "budget_baseline@30-42", "budget_target@30-42", "label_budget", "teacher_outputs",
          "distill", "domain_shift", "report"]
# The stages that run inference with evaluate.batch_size, and the results page (distill measures samples/s).
SCORING = ["compare", "distill", "domain_shift", "evaluate", "label_budget", "report", "teacher_outputs"]
# id -> (what marks its chart type in the vega-lite spec, the plotted field that must never be an empty cell)
PLOTS = {"label_budget": ("line", "dvc_inferred_y_value"), "compare": ("bar", "score"),
         "confusion_target": ("rect", "actual"), "confusion_baseline": ("rect", "actual"),
         "training_loss": ("line", "loss"), "validation_macro_f1": ("line", "eval_macro_f1"),
         "validation_loss": ("line", "eval_loss"), "pretrain_loss": ("line", "loss"),
         "class_counts": ("bar", "percent"), "text_lengths": ("bar", "percent"), "domain_projection": ("point", "y")}


def check_plots(project: DvcProject) -> None:
    """Each plot once, titled, with its chart type, and no empty cell in what it draws (an empty cell is
    drawn as 0: a curve file holding two kinds of row made every line fall to zero at every other row)."""
    shown = json.loads(project.run("dvc", "plots", "show", "--json").stdout)["data"]
    assert set(shown) == set(PLOTS), f"plots drawn: {sorted(shown)}"
    for plot_id, renders in shown.items():
        assert len(renders) == 1, f"{plot_id} is drawn {len(renders)} times"
        spec = renders[0]["content"]
        title = spec["title"]["text"] if isinstance(spec["title"], dict) else spec["title"]
        assert title and title != plot_id, f"{plot_id} has no title"
        mark, field = PLOTS[plot_id]
        assert f"'{mark}'" in str(spec), f"{plot_id} is not drawn with {mark} marks"
        values = spec["data"]["values"]
        assert values and all(row.get(field) not in ("", None) for row in values), f"{plot_id}: empty {field}"


def test_the_dag_runs_end_to_end_and_writes_every_report(built_project):
    """The shared run's outputs (read only: every test of the session may read them): every stage ran, and
    each report says what the tests below rely on."""
    assert sorted(built_project.first_run) == sorted(STAGES)
    dvc_project = built_project
    root = dvc_project.root
    summary = dvc_project.run("python", "-m", "stages.report").stdout
    assert "chosen:sequential" in summary and "source_only" in summary and "Distilled student" in summary
    assert "Labeled target train examples: 30 (data.target_train_labeled: 30; 59 valid after cleaning)" in summary
    clean = json.loads((root / "metrics/clean.json").read_text())
    assert clean["target"]["train"]["reasons"] == {"too_short": 1} and clean["warnings"] == []
    report = json.loads((root / "metrics/eval.json").read_text())
    assert report["strategy"] == "sequential"
    assert report["test_examples"] == 36
    assert report["training_seeds"] == {"target": [42, 43], "baseline": [42, 43]}
    for model in ("target", "baseline"):
        arm = report[model]
        assert set(arm["seeds"]) == {"42", "43"}
        assert abs(arm["macro_f1"] - sum(s["macro_f1"] for s in arm["seeds"].values()) / 2) < 1e-12
        assert set(arm["seeds"]["42"]["per_class"]) == {"negative", "neutral", "positive"}
        assert sum(map(sum, arm["seeds"]["43"]["confusion_matrix"])) == 36
        # Both arms chose their learning rate from the same grid on validation, the best score winning.
        scores = arm["learning_rate_validation_scores"]
        assert set(scores) == {"0.003", "0.001"} and scores[f"{arm['learning_rate']:g}"] == max(scores.values())
        assert set(arm["best_epoch"]) == set(arm["logit_adjustment"]) == {"42", "43"}
        tuning = json.loads((root / f"models/trained/{model}_seeds/43/tuning.json").read_text())
        assert tuning["seed"] == 43 and tuning["learning_rate"] == arm["learning_rate"]
    expected_gain = 100 * (report["target"]["macro_f1"] - report["baseline"]["macro_f1"])
    assert abs(report["gain_macro_f1_points"] - round(expected_gain, 2)) < 1e-9
    assert isinstance(report["significant"], bool)  # two training seeds an arm: a claim may be made
    compare = json.loads((root / "metrics/compare.json").read_text())
    assert set(compare) == {"baseline", "chosen:sequential", "source_only"}
    assert compare["baseline"]["gain_macro_f1_points"] == 0
    assert compare["chosen:sequential"]["macro_f1"] == report["target"]["macro_f1"]
    distill = json.loads((root / "metrics/distill.json").read_text())
    assert (distill["teacher"]["layers"], distill["student"]["layers"]) == (2, 1)
    assert distill["size_ratio"] < 1
    assert distill["teacher"]["macro_f1"] == report["target"]["seeds"]["42"]["macro_f1"]  # the seed-42 model
    assert distill["student_gain_over_baseline_points"] == round(
        100 * (distill["student"]["macro_f1"] - report["baseline"]["macro_f1"]), 2)
    low, high = distill["student_gain_ci95_points"]
    assert low <= distill["student_gain_over_baseline_points"] <= high
    student = AutoModelForSequenceClassification.from_pretrained(root / "models/student")
    assert student.config.num_hidden_layers == 1
    timing = json.loads((root / "metrics/timing.json").read_text())
    assert set(timing) == {"baseline", "baseline@43", "chosen:sequential", "chosen:sequential@43",
                           "source_only@42", "source phase"}
    assert min(timing.values()) > 0  # (no comparison of wall times: on a busy machine their order flips)
    budget_timing = json.loads((root / "metrics/budget_timing.json").read_text())
    assert set(budget_timing) == {"target_only@12 labels-42", "transfer@12 labels-42"}
    budget = json.loads((root / "metrics/label_budget.json").read_text())
    # x = train + validation labels: 24 validation labels at the full 30, 10 (in proportion) at 12.
    assert budget["full_budget"] == 30 and budget["train_labels"] == {"22": 12, "54": 30}
    assert set(budget["curve"]["target_only"]) == {"22", "54"} and budget["seeds"] == {"22": 1, "54": 2}
    assert budget["dropped_sizes"] == [30] and "not below the 30 labeled target" in budget["dropped_note"]
    assert json.loads((root / "models/budget/baseline-30-42/training.json").read_text())["skipped"]
    assert budget["curve"]["transfer"]["54"] == round(report["target"]["macro_f1"], 4)
    # One seed at 12 labels: no significance claim there; labels saved comes with its interval.
    assert budget["gain_ci95"]["22"]["significant"] is None and "one seed" in budget["gain_ci95"]["22"][
        "significance_note"]
    assert len(budget["labels_saved_ci95"]) == 2 and isinstance(budget["labels_saved_established"], bool)
    budget_tuning = json.loads((root / "models/budget/chosen-12-42/tuning.json").read_text())
    assert budget_tuning["learning_rate"] == report["target"]["learning_rate"]
    assert sum(budget_tuning["validation_predictions"].values()) == 10
    stuck = [folder for folder in (root / "models/budget").glob("*-12-42")
             if json.loads((folder / "tuning.json").read_text())["predicts_one_class"]]
    assert len(budget["warnings"]) == len(stuck) and all("did not learn" in w for w in budget["warnings"])
    assert "labels_saved" in budget and "Label budget" in summary
    domain = json.loads((root / "metrics/domain.json").read_text())
    assert set(domain["embeddings"]) == {"base", "domain", "target"} and domain["sample_per_domain"] > 0
    assert 0 <= domain["text"]["js_divergence"] <= 1 and "Domain shift" in summary
    check_plots(dvc_project)
    results = (root / "docs/results.md").read_text()
    assert f"| {report['strategy']} (transferred) | 2 | {report['target']['macro_f1']:.4f} ± " in results
    pretrain = json.loads((root / "metrics/pretrain.json").read_text())
    assert pretrain["enabled"] and {"random_head", "before", "after"} <= set(pretrain)

    model = AutoModelForSequenceClassification.from_pretrained(root / "models/target")
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    distill = json.loads((root / "metrics/distill.json").read_text())
    card = ModelCard.load(root / "models/student/README.md")  # the student's model card, from distill.json
    assert {r.metric_name: r.metric_value for r in card.data.eval_results}["macro-F1"] == round(
        distill["student"]["macro_f1"], 4)
    assert f"{distill['student_gain_over_baseline_points']:+.2f} points" in card.text
    # evaluate ships the seed-42 model of each arm with its card: the trained weights, the scores evaluate wrote
    for arm in ("target", "baseline"):
        assert (root / f"models/{arm}/model.safetensors").read_bytes() == (
            root / f"models/trained/{arm}/model.safetensors").read_bytes()
        card = ModelCard.load(root / f"models/{arm}/README.md")
        assert {r.metric_name: r.metric_value for r in card.data.eval_results}["macro-F1"] == round(
            report[arm]["seeds"]["42"]["macro_f1"], 4)
        assert f"on {report['test_examples']} examples" in card.text
    gain = f"{report['gain_macro_f1_points']:+.2f} points (95% interval"
    assert gain in (root / "models/target/README.md").read_text()



def test_predict_after_a_run_gives_the_labels_evaluate_scored(built_project, tmp_path):
    """transfer-predict as a user runs it after `dvc repro`, on a CSV of the target test texts: the shipped
    model's labels are the ones evaluate scored (data/predictions), row for row. (The tiny model's labels
    hardly vary, so a misaligned row is caught by tests/test_predict.py, on heads made to vary.)"""
    root = built_project.root
    rows = [json.loads(line) for line in (root / "data/augmented/target/test.jsonl").read_text().splitlines()]
    with (tmp_path / "new.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows({"id": row["id"], "text": row["text"]} for row in rows)
    out = built_project.run("transfer-predict", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")).stdout
    with (tmp_path / "p.csv").open() as f:
        predicted = {row["id"]: row["label"] for row in csv.DictReader(f)}
    with (root / "data/predictions/target-42.csv").open() as f:
        evaluated = {row["id"]: row["predicted"] for row in csv.DictReader(f)}
    assert predicted == evaluated and f"{len(rows)} predictions" in out


def test_a_forced_rerun_writes_byte_identical_metrics_and_plots(built_copy):
    """Every stage re-run with the same seed (wall times and samples/s live in timing.json and *_speed.json,
    apart on purpose)."""
    root = built_copy.root
    measured = {"timing.json", "budget_timing.json", "source_timing.json", "distill_speed.json",
                "teacher_speed.json", "prompting_speed.json"}

    def snapshot() -> dict[str, bytes]:
        return {str(f): f.read_bytes() for f in sorted((root / "metrics").rglob("*"))
                if f.is_file() and f.name not in measured}
    assert built_copy.repro() == []  # a copy is up to date: nothing runs
    first = snapshot()
    built_copy.run("dvc", "repro", "--force")
    assert snapshot() == first and len(first) > 15


def test_an_evaluation_param_reruns_only_the_scoring_stages(built_copy):
    """Every training and data stage stays cached."""
    params = built_copy.params
    params["evaluate"]["batch_size"] = 7
    built_copy.set_params(params)
    assert sorted(built_copy.repro()) == SCORING


def test_more_labels_rerun_everything_but_the_source_phase(built_copy):
    """The README's workflow, its own commands, from built_project's commit: `dvc exp run -S`, `dvc exp show`,
    `dvc metrics diff`, `dvc plots diff`. The labeled budget is clean's: clean and everything after it re-run,
    and 30 labels is now a point of the curve. But the source phase: TAPT read the same texts (labeled or
    not), so models/domain is unchanged, and finetune_source stays cached."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run(*shlex.split(readme_command("dvc exp run -S data.target_train_labeled=50"))).stdout
    assert sorted(ran_stages(out)) == sorted(set(STAGES) - {"base_model", "ingest", "finetune_source"})
    budget = json.loads((root / "metrics/label_budget.json").read_text())
    assert budget["full_budget"] == 50 and set(budget["train_labels"].values()) == {12, 30, 50}
    assert "dropped_sizes" not in budget
    for command in ("dvc exp show --only-changed", "dvc metrics diff", "dvc plots diff"):
        assert dvc_project.run(*shlex.split(readme_command(command))).returncode == 0
    table = dvc_project.run("dvc", "exp", "show", "--csv").stdout
    assert "data.target_train_labeled" in table.splitlines()[0] and ",50," in table


def test_target_only_is_the_baseline_recipe_and_keeps_the_data_and_baseline_cached(built_copy):
    """target_only without domain pretraining is the baseline's recipe: same seed, same model, zero gain."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run(*shlex.split(readme_command("dvc exp run -S finetune.strategy=target_only"))).stdout
    assert sorted(ran_stages(out)) == ["budget_target@12-42", "budget_target@30-42", "compare",
                                       "compare_train@source_only-42", "distill", "domain_shift", "evaluate",
                                       "finetune_source", "finetune_target", "label_budget", "pretrain_domain",
                                       "report", "teacher_outputs"]
    report = json.loads((root / "metrics/eval.json").read_text())
    assert report["target"] == report["baseline"] and report["gain_macro_f1_points"] == 0
    budget = json.loads((root / "metrics/label_budget.json").read_text())
    assert budget["curve"]["transfer"] == budget["curve"]["target_only"]


def test_ci_shares_results_through_a_remote_and_an_evaluation_param_reruns_two_stages(built_copy):
    """The CI workflow: push to a remote cache; a fresh clone pulls and has nothing to run."""
    dvc_project, root = built_copy, built_copy.root
    dvc_project.run("dvc", "remote", "add", "-d", "shared", str(root.parent / "remote"))
    dvc_project.run("dvc", "push", "-q")
    dvc_project.run("git", "add", ".dvc/config")
    dvc_project.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "remote")
    clone = DvcProject(root.parent / "clone")
    dvc_project.run("git", "clone", "-q", str(root), str(clone.root))
    clone.run("dvc", "pull", "-q")
    assert clone.repro() == [] and clone.stale() == {}
    assert (clone.root / "models/target/model.safetensors").read_bytes() == (
        root / "models/target/model.safetensors").read_bytes()
    card = (root / "models/target/README.md").read_bytes()
    out = dvc_project.run("dvc", "exp", "run", "-S", "evaluate.negative_transfer_margin=99").stdout
    assert set(ran_stages(out)) - {"report"} == {"compare", "evaluate"}
    assert (root / "models/target/README.md").read_bytes() == card  # the re-run writes the same card
    table = dvc_project.run("dvc", "exp", "show", "--csv").stdout
    assert "evaluate.negative_transfer_margin" in table.splitlines()[0] and ",99" in table


def test_label_shift_correction_reruns_only_the_transferred_side(built_copy):
    """A lever is the transferred model's: the baseline and its curve stay cached, and eval.json says what
    it chose."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run("dvc", "exp", "run", "-S", "finetune.label_shift=em").stdout
    assert sorted(ran_stages(out)) == ["budget_target@12-42", "budget_target@30-42", "compare",
                                       "compare_train@source_only-42", "distill", "domain_shift", "evaluate",
                                       "finetune_target", "label_budget", "report", "teacher_outputs"]
    levers = json.loads((root / "metrics/eval.json").read_text())["levers"]
    assert set(levers) == {"label_shift", "logit_adjustment"} and levers["label_shift"]["temperature"] > 0
    assert "skipped" in levers["logit_adjustment"]  # the default-on adjustment yields to em, and says so


def test_auto_cross_validates_its_candidates_and_keeps_the_baseline_cached(built_copy):
    """strategy: auto cross-validates its candidates and the baseline recipe on the labels."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run("dvc", "exp", "run", "-S", "finetune.strategy=auto", "-S", "finetune.auto.folds=2").stdout
    assert "finetune_baseline" not in ran_stages(out) and "finetune_target" in ran_stages(out)
    selection = json.loads((root / "metrics/eval.json").read_text())["selection"]
    assert selection["folds"] == 2 and set(selection["scores"]) == {"baseline", "target_only", "sequential"}
    candidates = {name: score["pooled"] for name, score in selection["scores"].items() if name != "baseline"}
    floor, best = selection["scores"]["baseline"]["pooled"], max(candidates.values())
    if selection["chosen"] == "baseline":  # the guard: no candidate above the baseline recipe
        assert best < floor and selection["guard_applied"]
    else:  # the best pooled score (ties: the first candidate listed in params)
        assert candidates[selection["chosen"]] == best >= floor
    summary = dvc_project.run("python", "-m", "stages.report").stdout
    assert f"auto: {selection['chosen']} (2-fold cross-validated macro_f1" in summary


def test_sequential_setfit_reaches_every_later_stage(built_copy):
    """SetFit after the source, with the default logit adjustment: a SentenceEmbeddingClassifier that every later
    stage reads (distill gives it a student of its kind, domain shift reads its encoder); the baseline stays
    cached (logit adjustment is one of its params too, so the test leaves it at its default)."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run("dvc", "exp", "run", "-S", "finetune.strategy=sequential_setfit", "-S",
                          "finetune.setfit.iterations=2", "-S", "finetune.setfit.source_examples=12").stdout
    assert "finetune_baseline" not in ran_stages(out)
    assert {"finetune_target", "evaluate", "distill", "domain_shift", "label_budget"} <= set(ran_stages(out))
    report = json.loads((root / "metrics/eval.json").read_text())
    assert report["strategy"] == "sequential_setfit"
    assert report["levers"]["setfit"]["source_examples"] == 12 and report["levers"]["setfit"]["target_examples"] >= 30
    assert report["levers"]["logit_adjustment"]["strength"] in dvc_project.params["finetune"]["logit_adjustment"]
    assert json.loads((root / "models/target/config.json").read_text())["transfer_head"] == "sentence_embedding"
    assert json.loads((root / "models/student/config.json").read_text())["transfer_head"] == "sentence_embedding"


def test_the_student_switched_off_trains_nothing_and_the_report_says_so(built_copy):
    """distill.enabled: false (the default run's setting): the two student stages record why they did not run,
    nothing upstream re-runs, and the summary and the results page say it was not run."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run("dvc", "exp", "run", "-S", "distill.enabled=false").stdout
    assert sorted(ran_stages(out)) == ["distill", "report", "teacher_outputs"]
    distill = json.loads((root / "metrics/distill.json").read_text())
    assert distill["applicable"] is False and distill["reason"].startswith("distill.enabled is false")
    assert not (root / "models/student/model.safetensors").exists()
    summary = dvc_project.run("python", "-m", "stages.report").stdout
    assert "Distilled student: not run (distill.enabled is false" in summary
    assert "Not run: distill.enabled is false" in (root / "docs/results.md").read_text()


SWITCHES = ("compare", "label_budget", "distill", "prompting", "domain_shift")


def test_the_five_switches_off_leave_only_tapt_the_source_phase_and_the_two_arms(built_copy):
    """Every optional stage switched off: nothing upstream re-runs (TAPT, the source phase, the chosen model and
    the baseline stay as trained), the compare and label-budget matrix entries and the student train nothing,
    each switched-off stage records why, and the summary and results page say what was not run."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run("dvc", "exp", "run", *(f"-S{switch}.enabled=false" for switch in SWITCHES)).stdout
    ran = set(ran_stages(out))
    assert not ran & {"pretrain_domain", "finetune_source", "finetune_baseline", "finetune_target", "evaluate"}
    assert {"compare", "label_budget", "distill", "prompting", "domain_shift", "report"} <= ran
    trained = [path for folder in ("models/compare", "models/budget", "models/student")
               for path in (root / folder).rglob("*.safetensors")]
    assert trained == []
    for entry in [p for folder in ("models/compare", "models/budget") for p in (root / folder).iterdir() if p.is_dir()]:
        skipped = json.loads((entry / "training.json").read_text())["skipped"]
        assert skipped.startswith(("compare.enabled is false", "label_budget.enabled is false")), entry
    reasons = {name: json.loads((root / f"metrics/{name}.json").read_text())["reason"]
               for name in ("compare", "label_budget", "distill", "prompting", "domain")}
    for name, reason in reasons.items():
        assert reason.startswith(f"{'domain_shift' if name == 'domain' else name}.enabled is false"), reason
    assert json.loads((root / "metrics/timing.json").read_text())  # the arms' wall times are still reported
    summary = dvc_project.run("python", "-m", "stages.report").stdout
    results = (root / "docs/results.md").read_text()
    for switch in SWITCHES:
        assert f"{switch}.enabled is false" in summary and f"{switch}.enabled is false" in results, switch
    assert "Headline gain over the baseline" in summary


def test_one_training_seed_makes_no_significance_claim_anywhere(built_copy):
    """finetune.seed_offsets: [] trains each arm once: eval.json, evaluate's line, the summary and the results
    page all say "one seed: no significance claim", and none calls the gain significant."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run("dvc", "exp", "run", "-S", "finetune.seed_offsets=[]").stdout
    assert {"finetune_baseline", "finetune_target", "evaluate", "report"} <= set(ran_stages(out))
    report = json.loads((root / "metrics/eval.json").read_text())
    assert report["training_seeds"] == {"target": [42], "baseline": [42]}
    assert report["significant"] is None and report["significance_note"] == "one seed: no significance claim"
    assert "one seed: no significance claim" in out
    summary = dvc_project.run("python", "-m", "stages.report").stdout
    results = (root / "docs/results.md").read_text()
    for text in (summary, results):
        assert "one seed: no significance claim" in text.lower()
        assert ", significant" not in text and "] significant" not in text
    assert not (root / "models/trained/target_seeds").exists() or not any(
        (root / "models/trained/target_seeds").iterdir())


def test_an_empty_label_budget_trains_no_curve_and_says_labels_saved_was_not_measured(built_copy):
    """label_budget.sizes: [] (the default run's choice) removes every budget training from the DAG; the
    label_budget stage still writes its file, saying that no curve was measured, and the plot keeps the
    full-budget pair."""
    dvc_project, root = built_copy, built_copy.root
    out = dvc_project.run("dvc", "exp", "run", "-S", "label_budget.sizes=[]").stdout
    assert sorted(ran_stages(out)) == ["label_budget", "report"]
    assert not any(stage.startswith("budget_") for stage in dvc_project.run("dvc", "stage", "list").stdout.split())
    budget = json.loads((root / "metrics/label_budget.json").read_text())
    assert budget["measured"] is False and "labels saved not measured" in budget["note"]
    summary = dvc_project.run("python", "-m", "stages.report").stdout
    for text in (summary, (root / "docs/results.md").read_text()):
        assert "labels saved not measured" in text
    check_plots(dvc_project)
    shown = json.loads(dvc_project.run("dvc", "plots", "show", "--json").stdout)["data"]["label_budget"]
    assert len(shown[0]["content"]["data"]["values"]) == 2  # one point per curve: the headline pair
