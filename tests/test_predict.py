"""transfer-predict: a trained folder on new inputs predicts what evaluate scores, per task, on tiny models
whose random heads are scaled up so that their predictions differ from row to row (a misaligned row would
show)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from tests.conftest import synthetic_rows, tiny_params, write_corpora
from transfer.core.params import parse_params
from transfer.tasks.prediction import predict_rows, read_inputs
from transfer.tasks.registry import get_task


def params_for(tiny_model, tmp_path, **changes):
    raw = tiny_params(tiny_model, write_corpora(tmp_path / "corpora"))
    for section, values in changes.items():
        raw[section] = values if not isinstance(values, dict) else {**raw.get(section, {}), **values}
    return raw, parse_params(raw, origin="test")


def sharpened(model, head):
    """The random head's weights x 200: logits far apart, so predictions vary with the input."""
    import torch

    with torch.no_grad():
        for parameter in head.parameters():
            parameter.mul_(200.0)
    return model


def centered(model, tokenizer):
    """The classifier's bias set so that the logits of the mean pooled output are 0: a random tiny BERT pools
    every text to nearly one vector, whose class would otherwise win everywhere."""
    import torch

    texts = [row["text"] for row in synthetic_rows("target", 64, 11)]
    with torch.no_grad():
        pooled = model.bert(**tokenizer(texts, padding=True, return_tensors="pt")).pooler_output
        model.classifier.bias.copy_(-model.classifier.weight @ pooled.mean(dim=0))
    return model


@pytest.fixture(scope="module")
def classifier(tiny_model, tmp_path_factory):
    from transformers import AutoTokenizer

    from transfer.tasks.classification import load_classifier

    folder = tmp_path_factory.mktemp("classifier")
    raw, params = params_for(tiny_model, folder)
    model = load_classifier(str(tiny_model), params)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    centered(sharpened(model, model.classifier), tokenizer).save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    return folder, params


def test_classification_predictions_are_evaluates_on_the_same_texts(classifier):
    from transformers import AutoTokenizer

    folder, params = classifier
    task = get_task("classification")
    rows = synthetic_rows("target", 40, 7)
    tokenizer = AutoTokenizer.from_pretrained(folder / "model")
    _, evaluated = task.score(folder / "model", {"test": task.tokenize(rows, tokenizer, params, "test")["test"]},
                              params)
    predicted = predict_rows(task, folder / "model", [{"id": r["id"], "text": r["text"]} for r in rows], params)
    assert [row["id"] for row in predicted] == [row["id"] for row in rows]  # input order
    assert {r["id"]: r["predicted"] for r in evaluated} == {r["id"]: r["label"] for r in predicted}
    assert len({row["label"] for row in predicted}) > 1  # the check above could catch a misaligned row
    for row in predicted:
        probabilities = [row[f"p_{label}"] for label in params.data.labels]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3) and row["score"] == max(probabilities)


def test_new_texts_are_normalized_as_clean_did_and_an_empty_one_keeps_its_row(classifier):
    folder, params = classifier
    task = get_task("classification")
    text = synthetic_rows("target", 1, 3)[0]["text"]
    rows = predict_rows(task, folder / "model", [{"id": "raw", "text": "  " + text.replace(" ", "   ") + "\n"},
                                                 {"id": "blank", "text": "   "},
                                                 {"id": "clean", "text": text}], params)
    assert [row["id"] for row in rows] == ["raw", "blank", "clean"]
    assert rows[0]["label"] == rows[2]["label"] and rows[0]["p_positive"] == rows[2]["p_positive"]
    assert rows[1]["error"] == "empty text" and "label" not in rows[1] and rows[0]["error"] == ""


def test_the_transformers_pipeline_reads_the_folder_as_predict_does(classifier):
    from transformers import pipeline

    folder, params = classifier
    texts = [row["text"] for row in synthetic_rows("target", 12, 5)]
    predicted = predict_rows(get_task("classification"), folder / "model",
                             [{"id": str(i), "text": t} for i, t in enumerate(texts)], params)
    classify = pipeline("text-classification", model=str(folder / "model"), device="cpu")
    assert [out["label"] for out in classify(texts, truncation=True, max_length=params.tokenize.max_length)] \
        == [row["label"] for row in predicted]


def test_the_command_reads_a_users_file_writes_every_prediction_and_prints_a_table(classifier, tmp_path, capsys):
    from stages.predict import main

    folder, _ = classifier
    rows = synthetic_rows("target", 6, 9)
    pd.DataFrame({"review": [r["text"] for r in rows]}).to_csv(tmp_path / "new.csv", index=False)
    main([str(tmp_path / "new.csv"), "--model", str(folder / "model"), "--params", str(folder / "params.yaml"),
          "--column", "text=review", "--out", str(tmp_path / "out.jsonl")])
    printed = capsys.readouterr().out
    written = pd.read_json(tmp_path / "out.jsonl", lines=True)
    assert len(written) == 6 and list(written.columns[:3]) == ["id", "label", "score"]
    assert "6 predictions" in printed and printed.count("\n") >= 6 + 3
    with pytest.raises(Exception, match="no text column `text`.*--column text=<column>"):
        main([str(tmp_path / "new.csv"), "--model", str(folder / "model"), "--params", str(folder / "params.yaml")])
    (tmp_path / "new.txt").write_text("review\tlabel\nfine\tpositive\n")  # the advice names predict's option
    with pytest.raises(Exception, match=r"cannot tell the format from the extension; give --format csv\|tsv"):
        main([str(tmp_path / "new.txt"), "--model", str(folder / "model"), "--params", str(folder / "params.yaml")])
    (tmp_path / "tabs.csv").write_text("review\tlabel\nfine\tpositive\n")
    with pytest.raises(Exception, match=r"looks tab-separated .*: give --format tsv$"):
        main([str(tmp_path / "tabs.csv"), "--model", str(folder / "model"), "--params", str(folder / "params.yaml")])


def test_lines_on_stdin_are_one_text_each_for_a_one_field_task(classifier):
    _, params = classifier
    rows = read_inputs(None, get_task("classification"), params, lines=["first text\n", "second\n"])
    assert rows == [{"id": "0", "text": "first text"}, {"id": "1", "text": "second"}]
    with pytest.raises(Exception, match="question, context"):
        read_inputs(None, get_task("qa"), params, lines=["a question"])


def test_qa_predictions_are_evaluates_answers_with_their_spans(tiny_model, tmp_path):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    _, params = params_for(tiny_model, tmp_path, task="qa", tokenize={"max_length": 32}, qa={"doc_stride": 8})
    task = get_task("qa")
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_model)
    sharpened(model, model.qa_outputs).save_pretrained(tmp_path / "qa")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.save_pretrained(tmp_path / "qa")
    rows = [{"id": f"q{i}", "question": "which drug did the patient take ?",
             "context": f"the patient took {drug} daily for {i + 2} weeks and then {drug} again .",
             "answers": {"text": [drug], "answer_start": [17]}}
            for i, drug in enumerate(["aspirin", "ibuprofen", "metformin", "lisinopril", "sertraline", "warfarin"])]
    _, evaluated = task.score(tmp_path / "qa", task.tokenize(rows, tokenizer, params, "test"), params)
    predicted = predict_rows(task, tmp_path / "qa", [{k: r[k] for k in ("id", "question", "context")} for r in rows],
                             params)
    assert {r["id"]: r["prediction"] for r in evaluated} == {r["id"]: r["answer"] for r in predicted}
    assert len({row["answer"] for row in predicted}) > 1
    for row, source in zip(predicted, rows, strict=True):
        if not row["abstained"]:
            assert source["context"][row["start"]:row["start"] + len(row["answer"])] == row["answer"]


def test_a_question_too_long_for_the_window_keeps_its_row_with_the_reason_and_the_rest_are_answered(
        tiny_model, tmp_path):
    """The tokenizer cannot slide a window over a context when the question leaves no more room than the
    stride: it panics and takes the whole batch with it. predict refuses that row alone; tokenize (training,
    evaluation) stops with the question's id and what to change."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from transfer.core.errors import DataError

    _, params = params_for(tiny_model, tmp_path, task="qa", tokenize={"max_length": 32}, qa={"doc_stride": 8})
    task = get_task("qa")
    AutoModelForQuestionAnswering.from_pretrained(tiny_model).save_pretrained(tmp_path / "qa")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.save_pretrained(tmp_path / "qa")
    context = "the patient took aspirin daily for two weeks and then stopped ."
    rows = [{"id": "short", "question": "which drug ?", "context": context},
            {"id": "long", "question": " ".join(["which drug did the patient take"] * 6) + " ?", "context": context}]
    predicted = {row["id"]: row for row in predict_rows(task, tmp_path / "qa", rows, params)}
    assert "too long" not in predicted["short"]["error"] and predicted["short"]["answer"] is not None
    assert predicted["long"]["answer"] is None
    assert "tokenize.max_length" in predicted["long"]["error"] and "qa.doc_stride" in predicted["long"]["error"]
    with pytest.raises(DataError, match="id long"):
        task.tokenize([{**row, "answers": {"text": [], "answer_start": []}} for row in rows], tokenizer, params,
                      "test")


def test_translation_predictions_are_evaluates_outputs(tiny_model, tmp_path):
    import torch
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from transfer.core.modeling import resolve_model

    _, params = params_for(tiny_model, tmp_path)
    task = get_task("translation")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("embedded:all-MiniLM-L6-v2"))
    config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                        eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.cls_token_id,
                        init_std=0.5)  # weights wide enough that the outputs differ by input
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(tmp_path / "mt")
    tokenizer.save_pretrained(tmp_path / "mt")
    sentences = ["the dose was too high", "take it at night", "no side effects at all", "it helped my pain"]
    rows = [{"id": f"s{i}", "source_text": s, "target_text": s} for i, s in enumerate(sentences)]
    _, evaluated = task.score(tmp_path / "mt", task.tokenize(rows, tokenizer, params, "test"), params)
    predicted = predict_rows(task, tmp_path / "mt", [{"id": r["id"], "source_text": r["source_text"]} for r in rows],
                             params)
    assert {r["id"]: r["translation"] for r in evaluated} == {r["id"]: r["translation"] for r in predicted}
    assert len({row["translation"] for row in predicted}) > 1


def test_the_table_shows_the_predicted_columns_when_the_first_input_was_refused():
    from transfer.tasks.prediction import predictions_table

    table = predictions_table([{"id": "a", "text": ""}, {"id": "b", "text": "fine"}],
                              [{"id": "a", "error": "empty text"},
                               {"id": "b", "label": "positive", "score": 0.9, "error": ""}], ["text"])
    header = table.splitlines()[0].split()
    assert header == ["id", "text", "label", "score", "error"] and "empty text" in table and "0.900" in table
