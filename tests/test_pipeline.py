"""The whole DAG through `dvc repro` on the tiny model, and DVC re-running exactly what changed."""

from __future__ import annotations

import json

from transformers import AutoModelForSequenceClassification

from tests.conftest import DvcProject

STAGES = ["ingest", "clean", "augment", "tokenize", "pretrain_domain", "finetune_baseline", "finetune_target",
          "evaluate", "compare_train@source_only-42", "compare", "budget_baseline@12-42", "budget_target@12-42",
          "label_budget", "distill", "domain_shift"]
# The stages that run inference with evaluate.batch_size.
SCORING = ["compare", "distill", "domain_shift", "evaluate", "label_budget"]


def test_dag_runs_end_to_end_reruns_only_what_changed_and_compares_experiments(dvc_project):
    assert sorted(dvc_project.repro()) == sorted(STAGES)

    summary = dvc_project.run("python", "-m", "stages.report").stdout
    assert "chosen:sequential" in summary and "source_only" in summary and "Distilled student" in summary
    report = json.loads((dvc_project.root / "metrics/eval.json").read_text())
    assert report["strategy"] == "sequential"
    assert report["test_examples"] == 36
    for model in ("target", "baseline"):
        assert 0.0 <= report[model]["macro_f1"] <= 1.0
        assert set(report[model]["per_class"]) == {"negative", "neutral", "positive"}
        assert sum(map(sum, report[model]["confusion_matrix"])) == 36
    expected_gain = 100 * (report["target"]["macro_f1"] - report["baseline"]["macro_f1"])
    assert abs(report["gain_macro_f1_points"] - round(expected_gain, 2)) < 1e-9
    compare = json.loads((dvc_project.root / "metrics/compare.json").read_text())
    assert set(compare) == {"baseline", "chosen:sequential", "source_only"}
    assert compare["baseline"]["gain_macro_f1_points"] == 0
    assert compare["chosen:sequential"]["macro_f1"] == report["target"]["macro_f1"]
    distill = json.loads((dvc_project.root / "metrics/distill.json").read_text())
    assert (distill["teacher"]["layers"], distill["student"]["layers"]) == (2, 1)
    assert distill["size_ratio"] < 1 and distill["teacher"]["macro_f1"] == report["target"]["macro_f1"]
    student = AutoModelForSequenceClassification.from_pretrained(dvc_project.root / "models/student")
    assert student.config.num_hidden_layers == 1
    timing = json.loads((dvc_project.root / "metrics/timing.json").read_text())
    assert set(timing) == {"baseline", "chosen:sequential", "source_only@42"} and min(timing.values()) > 0
    budget = json.loads((dvc_project.root / "metrics/label_budget.json").read_text())
    assert budget["full_budget"] == 30 and set(budget["curve"]["target_only"]) == {"12", "30"}
    assert budget["curve"]["transfer"]["30"] == round(report["target"]["macro_f1"], 4)
    assert "labels_saved" in budget and "Label budget" in summary
    domain = json.loads((dvc_project.root / "metrics/domain.json").read_text())
    assert set(domain["embeddings"]) == {"base", "domain", "target"} and domain["sample_per_domain"] > 0
    assert 0 <= domain["text"]["js_divergence"] <= 1 and "Domain shift" in summary
    dvc_project.run("dvc", "plots", "show", "-o", "plots-html")  # every plot in dvc.yaml renders
    assert (dvc_project.root / "plots-html" / "index.html").exists()
    pretrain = json.loads((dvc_project.root / "metrics/pretrain.json").read_text())
    assert pretrain["enabled"] and {"random_head", "before", "after"} <= set(pretrain)

    model = AutoModelForSequenceClassification.from_pretrained(dvc_project.root / "models/target")
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}

    # Nothing changed: nothing runs.
    assert dvc_project.repro() == []

    # Determinism: every stage re-run with the same seed writes byte-identical metrics and plots
    # (wall times and samples/s live in timing.json and distill_speed.json, apart on purpose).
    measured = {"timing.json", "distill_speed.json"}
    def snapshot() -> dict[str, bytes]:
        return {str(f): f.read_bytes() for f in sorted((dvc_project.root / "metrics").rglob("*"))
                if f.is_file() and f.name not in measured}
    first = snapshot()
    dvc_project.run("dvc", "repro", "--force")
    assert snapshot() == first and len(first) > 15

    # An evaluation param: every training and data stage stays cached.
    params = dvc_project.params
    params["evaluate"]["batch_size"] = 7
    dvc_project.set_params(params)
    assert sorted(dvc_project.repro()) == SCORING

    # A clean param that changes the cleaned target data: clean and everything downstream re-run.
    params["clean"]["min_chars"] = 7
    dvc_project.set_params(params)
    assert sorted(dvc_project.repro()) == sorted(STAGES[1:])
    clean = json.loads((dvc_project.root / "metrics/clean.json").read_text())
    assert clean["target"]["train"]["reasons"] == {"too_short": 1}

    # The strategy only concerns the chosen model: the baseline and the data stay cached.
    params["finetune"]["strategy"] = "target_only"
    dvc_project.set_params(params)
    assert sorted(dvc_project.repro()) == ["budget_target@12-42", "compare", "distill", "domain_shift",
                                           "evaluate", "finetune_target", "label_budget"]

    # target_only without domain pretraining is the baseline's recipe: same seed, same model, zero gain.
    params["pretrain_domain"]["enabled"] = False
    dvc_project.set_params(params)
    assert sorted(dvc_project.repro()) == ["budget_target@12-42", "compare", "compare_train@source_only-42",
                                           "distill", "domain_shift", "evaluate", "finetune_target",
                                           "label_budget", "pretrain_domain"]
    report = json.loads((dvc_project.root / "metrics/eval.json").read_text())
    assert report["target"] == report["baseline"] and report["gain_macro_f1_points"] == 0
    budget = json.loads((dvc_project.root / "metrics/label_budget.json").read_text())
    assert budget["curve"]["transfer"] == budget["curve"]["target_only"]

    # The README's workflow: commit, `dvc exp run -S`, `dvc exp show`.
    dvc_project.run("git", "add", "-A")
    dvc_project.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a run")

    # The CI workflow: push to a remote cache; a fresh clone pulls and has nothing to run.
    dvc_project.run("dvc", "remote", "add", "-d", "shared", str(dvc_project.root.parent / "remote"))
    dvc_project.run("dvc", "push", "-q")
    dvc_project.run("git", "add", ".dvc/config")
    dvc_project.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "remote")
    clone = DvcProject(dvc_project.root.parent / "clone")
    dvc_project.run("git", "clone", "-q", str(dvc_project.root), str(clone.root))
    clone.run("dvc", "pull", "-q")
    assert clone.repro() == [] and "up to date" in clone.run("dvc", "status").stdout
    assert (clone.root / "models/target/model.safetensors").read_bytes() == (
        dvc_project.root / "models/target/model.safetensors").read_bytes()
    out = dvc_project.run("dvc", "exp", "run", "-S", "evaluate.negative_transfer_margin=99").stdout
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    assert ran == ["compare", "evaluate"]
    table = dvc_project.run("dvc", "exp", "show", "--csv").stdout
    assert "evaluate.negative_transfer_margin" in table.splitlines()[0] and ",99" in table
