"""QA and translation through the same dvc.yaml: user files in several formats -> every stage -> the
task's scores, the gain over the target-only baseline, rejected rows with reasons, and params that
refuse classification-only knobs."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from tests.conftest import make_project, tiny_params
from transfer.core.errors import ParamsError
from transfer.core.params import parse_params
from transfer.tasks.registry import get_task, task_for

DRUGS = ["ibuprofen", "aspirin", "insulin", "metformin", "lisinopril", "prednisone"]
SYMPTOMS = ["headache", "fever", "nausea", "back pain", "insomnia", "a cough"]
CITIES = ["paris", "boston", "madrid", "tokyo", "denver", "lagos"]
FILLER = ["the", "report", "was", "written", "later", "by", "the", "nurse", "on", "duty", "that", "week"]


def qa_record(domain: str, i: int, rng: random.Random) -> dict:
    """A context with one answer; some target contexts are long enough to need several windows."""
    if domain == "source":
        city = rng.choice(CITIES)
        context = f"the flight {i} to {city} left late from gate {rng.randint(1, 40)} ."
        return {"id": f"s{i}", "question": "where did the flight go ?", "context": context, "answer_text": city,
                "answer_start": context.index(city)}
    drug, symptom = rng.choice(DRUGS), rng.choice(SYMPTOMS)
    filler = " ".join(rng.choices(FILLER, k=rng.choice([0, 0, 40])))
    context = f"{filler} patient {i} took {drug} for {symptom} .".strip()
    return {"id": f"t{i}", "question": "what did the patient take ?", "context": context, "answer_text": drug,
            "answer_start": context.index(f" {drug} ") + 1}


def squad_json(records: list[dict]) -> dict:
    return {"version": "v1.1", "data": [{"title": "drugs", "paragraphs": [
        {"context": r["context"], "qas": [{"id": r["id"], "question": r["question"],
                                           "answers": [{"text": r["answer_text"],
                                                        "answer_start": r["answer_start"]}]}]}
        for r in records]}]}


@pytest.fixture
def qa_project(tmp_path, tiny_model):
    rng, folder = random.Random(0), tmp_path / "corpora"
    folder.mkdir()
    pd.DataFrame([qa_record("source", i, rng) for i in range(80)]).to_csv(folder / "source.csv", index=False)
    target = [qa_record("target", i, rng) for i in range(110)]
    target[1]["answer_start"] += 3  # points at the wrong characters: rejected by clean, with the reason
    (folder / "train.json").write_text(json.dumps(squad_json(target[:50])))
    pd.DataFrame(target[50:70]).to_csv(folder / "validation.csv", index=False)
    # Test questions on 10 "articles": evaluate's bootstrap draws them whole
    pd.DataFrame(target[70:]).assign(title=[f"ward {i % 10}" for i in range(40)]).to_json(
        folder / "test.jsonl", orient="records", lines=True)
    params = tiny_params(tiny_model, {
        "source": {"kind": "files", "path": str(folder / "source.csv")},
        "target": {"kind": "files", "train": str(folder / "train.json"), "validation": str(folder / "validation.csv"),
                   "test": str(folder / "test.jsonl")}})
    params["task"] = "qa"
    params["data"]["labels"] = []
    params["tokenize"]["max_length"] = 48
    params["qa"]["doc_stride"] = 16
    params["data"]["target_train_labeled"] = 40
    params["compare"]["strategies"] = ["source_only", "joint"]
    params["finetune"]["peft"] = "lora"
    params["finetune"]["lora"]["target_modules"] = ["query", "key", "value"]
    return make_project(tmp_path / "project", params)


@pytest.mark.dag
def test_qa_runs_through_the_dag_with_the_baseline_and_the_gain(qa_project):
    stages = qa_project.repro()
    assert "finetune_baseline" in stages and "label_budget" in stages
    root = qa_project.root
    rejected = [json.loads(line) for line in (root / "data/rejected/target.jsonl").read_text().splitlines()]
    assert [(r["id"], r["reason"]) for r in rejected] == [("train-t1", "answer_not_at_answer_start")]
    clean = json.loads((root / "metrics/clean.json").read_text())
    # The budget of 40 labeled questions is taken from the 49 valid ones; the other 9 are unlabeled contexts.
    assert clean["target"]["train"] == {"in": 50, "kept": 40, "rejected": 1, "beyond_budget": 9,
                                        "reasons": {"answer_not_at_answer_start": 1}}
    assert clean["labeled_budget"]["target"] == {"requested": 40, "valid": 49, "used": 40, "beyond_budget": 9}
    assert clean["target"]["unlabeled"]["kept"] == 9
    report = json.loads((root / "metrics/eval.json").read_text())
    assert report["task"] == "qa" and report["test_examples"] == 40
    assert "no class probabilities" in report["levers"]["logit_adjustment"]["skipped"]  # on by default: not refused
    for model in ("target", "baseline"):
        assert 0 <= report[model]["exact_match"] <= report[model]["f1"] <= 100
        # v1.1-style data (every question answerable): the threshold search leaves abstention off
        assert set(report[model]["abstention_threshold"].values()) == {None}
    assert report["gain_f1_points"] == round(report["target"]["f1"] - report["baseline"]["f1"], 2)
    assert report["negative_transfer"] == (report["gain_f1_points"] < -1.0)
    assert report["resampled_groups"] == 10  # the titles of the test table came through ingest and tokenize
    # QA keeps the epoch with the best validation F1, and draws it beside the loss
    curves = pd.read_csv(root / "metrics/curves/target_eval.csv")
    assert {"eval_loss", "eval_f1"} <= set(curves.columns) and curves["eval_f1"].between(0, 100).all()
    predictions = pd.read_csv(root / "metrics/plots/predictions_target.csv", keep_default_na=False)
    assert set(predictions["group"]) == {f"title:ward {i}" for i in range(10)}
    assert len(predictions) == 40 and set(predictions["actual"]) == {"answerable"}
    assert set(predictions["gold"]) <= set(DRUGS)
    outcomes = {"exact match", "partial overlap", "wrong span"}  # it never abstains
    assert set(predictions["predicted"]) <= outcomes
    exact = (predictions["predicted"] == "exact match").mean()
    assert abs(100 * exact - report["target"]["seeds"]["42"]["exact_match"]) < 1e-6  # the seed-42 model's rows
    budget = json.loads((root / "metrics/label_budget.json").read_text())
    assert budget["full_budget"] == 40 and set(budget["train_labels"].values()) == {12, 40}
    assert json.loads((root / "metrics/distill.json").read_text())["applicable"] is False
    compare = json.loads((root / "metrics/compare.json").read_text())
    assert set(compare) == {"baseline", "chosen:sequential+lora", "source_only+lora", "joint+lora"}
    assert compare["chosen:sequential+lora"]["f1"] == report["target"]["f1"]
    assert "F1" in qa_project.run("python", "-m", "stages.report").stdout
    from transformers import AutoModelForQuestionAnswering

    AutoModelForQuestionAnswering.from_pretrained(root / "models/target")
    assert qa_project.repro() == []


def translate_words(sentence: str) -> str:
    """A made-up target language: every word reversed, so the mapping is learnable but not a copy."""
    return " ".join(word[::-1] for word in sentence.split())


@pytest.mark.dag
def test_translation_runs_through_the_dag_from_aligned_files_and_a_table(tmp_path, tiny_model):
    rng, folder = random.Random(1), tmp_path / "corpora"
    folder.mkdir()
    source = [f"flight {i} to {rng.choice(CITIES)} was late" for i in range(70)]
    pd.DataFrame({"en": source, "xx": [translate_words(s) for s in source]}).to_csv(folder / "source.tsv", sep="\t",
                                                                                   index=False)
    target = [f"patient {i} took {rng.choice(DRUGS)} for {rng.choice(SYMPTOMS)}" for i in range(90)]
    splits = {"train": target[:50], "validation": target[50:66], "test": target[66:]}
    spec = {"kind": "files", "format": "aligned"}
    for split, sentences in splits.items():
        translations = [translate_words(s) for s in sentences]
        if split == "train":
            translations[3] = ""  # an empty translation: rejected by clean, with the reason
        (folder / f"{split}.en").write_text("\n".join(sentences) + "\n")
        (folder / f"{split}.xx").write_text("\n".join(translations) + "\n")
        spec[split] = [str(folder / f"{split}.en"), str(folder / f"{split}.xx")]
    params = tiny_params(tiny_model, {"source": {"kind": "files", "path": str(folder / "source.tsv"),
                                                 "source_column": "en", "target_column": "xx"},
                                      "target": spec})
    params.update(task="translation")
    params["data"].update(labels=[], target_train_labeled=40)
    params["translation"].update(max_source_length=24, max_target_length=24, num_beams=2, max_new_tokens=16)
    project = make_project(tmp_path / "project", params)

    assert "evaluate" in project.repro()
    root = project.root
    rejected = [json.loads(line) for line in (root / "data/rejected/target.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejected] == ["empty_target_text"]
    report = json.loads((root / "metrics/eval.json").read_text())
    assert report["task"] == "translation" and report["test_examples"] == 24
    for model in ("target", "baseline"):
        assert 0 <= report[model]["bleu"] <= 100 and 0 <= report[model]["chrf"] <= 100
    assert report["gain_chrf_points"] == round(report["target"]["chrf"] - report["baseline"]["chrf"], 2)
    predictions = pd.read_csv(root / "metrics/plots/predictions_baseline.csv", keep_default_na=False)
    assert list(predictions.columns) == ["id", "actual", "predicted", "reference", "translation"]
    assert len(predictions) == 24 and predictions["predicted"].str.startswith("chrF ").all()
    assert set(json.loads((root / "metrics/domain.json").read_text())["embeddings"]) == {"base", "domain", "target"}
    compare = json.loads((root / "metrics/compare.json").read_text())
    assert set(compare) == {"baseline", "chosen:sequential", "source_only"} and "chrf" in compare["source_only"]


def qa_params(**changes) -> dict:
    import yaml

    from tests.conftest import ROOT

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["task"] = "qa"
    raw["data"].update(labels=[], source={"kind": "files", "path": "s.json"}, target={"kind": "files", "path": "t.csv"})
    for section, values in changes.items():
        raw[section].update(values) if isinstance(raw.get(section), dict) else raw.update({section: values})
    return raw


def test_a_qa_params_file_is_valid():
    assert task_for(parse_params(qa_params())).name == "qa"


@pytest.mark.parametrize(("changes", "expected"), [
    ({"finetune": {"strategy": "dann"}}, "dann need a label head"),
    ({"augment": {"n_aug": 2}}, "augment.n_aug"),
    ({"augment": {"rebalance": "oversample"}}, "no classes to rebalance"),
    ({"data": {"labels": ["a", "b"]}}, "data.labels: class names are for classification"),
    ({"data": {"labels": [], "target": {"kind": "packaged", "name": "drugscom_reviews"}}}, "packaged corpora"),
    ({"data": {"labels": [], "target": {"kind": "files", "path": "t.csv", "text_column": "review"}}},
     "data.target.text_column: a classification key"),
    ({"data": {"labels": [], "target": {"kind": "files", "path": ["a.en", "a.de"], "format": "aligned"}}},
     "aligned is for task translation"),
    ({"qa": {"doc_stride": 200}}, "qa.doc_stride"),
    ({"finetune": {"strategy": "joint", "joint": {"source_weight": 2.0, "target_weight": 1.0}}},
     "finetune.joint weights"),
])
def test_qa_params_refuse_keys_of_other_tasks(changes, expected):
    raw = qa_params()
    for section, values in changes.items():
        raw[section].update(values)
    with pytest.raises(ParamsError, match=expected):
        task_for(parse_params(raw))


def test_aligned_params_come_in_pairs():
    raw = qa_params()
    raw.update(task="translation")
    raw["data"]["target"] = {"kind": "files", "train": "a.en", "format": "aligned"}
    with pytest.raises(ParamsError, match="pair"):
        parse_params(raw)


def test_hub_datasets_in_the_squad_and_wmt_layouts(tmp_path):
    """The `kind: hub` path through datasets.load_dataset (here its json builder on files the test writes)."""
    from transfer.core.errors import DataError
    from transfer.core.params import HubDataset
    from transfer.data.corpora import load_corpus

    pairs = [{"translation": {"en": f"sentence {i}", "de": f"satz {i}"}} for i in range(20)]
    pd.DataFrame(pairs).to_json(tmp_path / "wmt.jsonl", orient="records", lines=True)
    spec = HubDataset(kind="hub", path="json", data_files={"train": str(tmp_path / "wmt.jsonl")},
                      source_column="translation.en", target_column="translation.de")
    splits = load_corpus(spec, 0, 0.1, 0.2, get_task("translation"))
    assert {len(rows) for rows in splits.values()} == {2, 4, 14}
    row = splits["train"][0]
    assert row["target_text"] == row["source_text"].replace("sentence", "satz")

    contexts = [f"Patient {k} took aspirin for a fever." for k in range(5)]
    squad = [{"id": f"q{i}", "question": "What was taken?", "context": contexts[i % 5],
              "answers": {"text": ["aspirin"], "answer_start": [contexts[i % 5].index("aspirin")]}} for i in range(10)]
    pd.DataFrame(squad).to_json(tmp_path / "squad.jsonl", orient="records", lines=True)
    spec = HubDataset(kind="hub", path="json", data_files={"train": str(tmp_path / "squad.jsonl")})
    splits = load_corpus(spec, 0, 0.1, 0.2, get_task("qa"))
    record = splits["test"][0]
    assert record["answers"]["text"] == ["aspirin"] and record["id"].startswith("train-q")
    # Two questions a passage: test and validation get whole passages, never one that train also has.
    assert {len(rows) for rows in splits.values()} == {2, 6}
    passages = {split: {r["context"] for r in rows} for split, rows in splits.items()}
    assert not passages["train"] & (passages["test"] | passages["validation"])
    assert not passages["test"] & passages["validation"]
    pd.DataFrame(squad).assign(context=contexts[0]).to_json(tmp_path / "squad.jsonl", orient="records", lines=True)
    with pytest.raises(DataError, match="took every train row .*10 questions on 1 contexts.*its own file"):
        load_corpus(spec, 0, 0.1, 0.2, get_task("qa"))
    pd.DataFrame(squad).drop(columns=["answers"]).to_json(tmp_path / "squad.jsonl", orient="records", lines=True)
    with pytest.raises(DataError, match="missing answers"):
        load_corpus(spec, 0, 0.1, 0.2, get_task("qa"))


def test_qa_rows_with_empty_cells_are_rejected_with_their_reason_not_lost(tmp_path):
    from tests.conftest import shipped_section
    from transfer.data.cleaning import clean_domains
    from transfer.tasks.qa import read_qa_table

    context = "Patient 3 took aspirin for a fever."
    (tmp_path / "t.csv").write_text("id,question,context,answer_text,answer_start\n"
                                    f"a,What was taken?,{context},aspirin,{context.index('aspirin')}\n"
                                    "b,What was taken?,,aspirin,0\n"
                                    f"c,,{context},aspirin,{context.index('aspirin')}\n")
    from transfer.data.tables import read_table

    records = read_qa_table(read_table(tmp_path / "t.csv"), "t.csv")
    rows = [{**r, "domain": "target", "split": "train"} for r in records]
    kept, rejected = clean_domains({"target": {"train": rows}}, [], shipped_section("clean"), get_task("qa"))
    assert [r["id"] for r in kept["target"]["train"]] == ["a"]
    assert {r["id"]: r["reason"] for r in rejected["target"]} == {"b": "empty_context", "c": "empty_question"}
