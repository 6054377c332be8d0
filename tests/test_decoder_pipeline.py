"""The default DAG through `dvc repro` with model.name a tiny Llama-style decoder (a local folder): causal
continued pretraining with forgetting, the decoder classifier with LoRA on every linear layer, zero- and
few-shot prompting baselines in compare, and an encoder student distilled from the cached teacher
outputs, which a student-only change reuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModelForSequenceClassification

from tests.conftest import DvcProject, make_project, tiny_params, write_corpora
from tests.tiny_model import build_tiny_decoder


@pytest.fixture
def decoder_project(tmp_path) -> DvcProject:
    model = build_tiny_decoder(tmp_path / "tiny-llama", "llama")
    params = tiny_params(model, write_corpora(tmp_path / "corpora"))
    params["pretrain_domain"].update(learning_rate=3e-3, epochs=2.0)
    params["finetune"]["peft"] = "lora"
    params["finetune"]["lora"].update(r=4, alpha=8)
    params["distill"].update(epochs=2)
    return make_project(tmp_path / "project", params)


@pytest.mark.dag
def test_the_default_dag_runs_on_a_decoder_and_distills_into_an_encoder(decoder_project):
    root = decoder_project.root
    ran = decoder_project.repro()
    assert {"pretrain_domain", "finetune_baseline", "finetune_target", "evaluate", "compare", "label_budget",
            "teacher_outputs", "distill", "domain_shift", "report"} <= set(ran)

    pretrain = json.loads((root / "metrics/pretrain.json").read_text())
    assert pretrain["backbone"] == "decoder" and pretrain["objective"] == "causal_lm"
    assert pretrain["after"]["perplexity"] < pretrain["before"]["perplexity"]
    assert pretrain["forgetting"]["texts"] > 0 and "loss_increase" in pretrain["forgetting"]
    assert AutoConfig.from_pretrained(root / "models/domain").architectures == ["LlamaForCausalLM"]

    report = json.loads((root / "metrics/eval.json").read_text())
    assert report["strategy"] == "sequential" and 0 <= report["target"]["macro_f1"] <= 1
    assert "no bias" in report["levers"]["logit_adjustment"]["skipped"]
    target = AutoModelForSequenceClassification.from_pretrained(root / "models/target")
    assert type(target).__name__ == "LlamaForSequenceClassification" and target.config.pad_token_id is not None
    assert not any("lora" in name for name, _ in target.named_parameters())  # adapters merged into the weights
    training = json.loads((root / "models/target/training.json").read_text())
    assert training["peft"] == "lora"

    prompting = json.loads((root / "metrics/prompting.json").read_text())
    assert prompting["applicable"] and prompting["test_examples"] == 36
    assert prompting["few_shot"]["in_context_examples"] == 4 and prompting["zero_shot"]["in_context_examples"] == 0
    compare = json.loads((root / "metrics/compare.json").read_text())
    assert {"baseline", "zero_shot", "few_shot"} <= set(compare)
    assert compare["few_shot"]["macro_f1"] == prompting["few_shot"]["macro_f1"]
    assert "gain_ci95_points" in compare["zero_shot"]
    budget = json.loads((root / "metrics/label_budget.json").read_text())
    assert budget["prompting"]["few_shot"] == {"labels": 4, "macro_f1": round(prompting["few_shot"]["macro_f1"], 4)}

    distill = json.loads((root / "metrics/distill.json").read_text())
    assert distill["student"]["from"] == "embedded:all-MiniLM-L6-v2" and distill["student"]["layers"] == 6
    assert distill["teacher"]["macro_f1"] == report["target"]["seeds"]["42"]["macro_f1"]  # the seed-42 model
    assert "student_gain_ci95_points" in distill
    student = AutoConfig.from_pretrained(root / "models/student")
    assert student.model_type == "bert"
    summary = decoder_project.run("python", "-m", "stages.report").stdout
    assert "causal-LM loss" in summary and "forgetting: loss on" in summary

    # A student-only change retrains the student from the cached teacher outputs: the teacher does not run.
    params = decoder_project.params
    params["distill"]["epochs"] = 1
    decoder_project.set_params(params)
    assert sorted(decoder_project.repro()) == ["distill", "report"]
    # Prompting is scored apart from training: a change of k re-runs it and its readers (compare, label_budget,
    # teacher_outputs; the report only if their numbers moved), nothing trains.
    params["prompting"]["few_shot_k"] = 3
    decoder_project.set_params(params)
    ran = decoder_project.repro()
    assert "prompting" in ran and set(ran) <= {"prompting", "compare", "label_budget", "teacher_outputs", "report"}

    # The prompted LLM as the teacher: its verbalizer log-likelihoods are the student's soft labels.
    params["distill"]["teacher"] = "few_shot"
    decoder_project.set_params(params)
    assert {"teacher_outputs", "distill"} <= set(decoder_project.repro())
    distill = json.loads((root / "metrics/distill.json").read_text())
    prompting = json.loads((root / "metrics/prompting.json").read_text())
    assert distill["teacher"]["strategy"] == "few_shot"
    assert distill["teacher"]["macro_f1"] == pytest.approx(prompting["few_shot"]["macro_f1"])
    assert distill["student"]["from"] == "embedded:all-MiniLM-L6-v2"
    assert Path(root / "data/teacher/soft_labels.jsonl").exists()
