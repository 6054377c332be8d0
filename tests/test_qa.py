"""Extractive QA pieces: SQuAD JSON and table adapters, answer checks, stride windows whose labels
point at the answer tokens, span post-processing back to text, and the official EM/F1."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stages.corpora import DataError
from stages.modeling import resolve_model
from stages.qa import (
    answer_problem,
    normalize_answer,
    postprocess_predictions,
    prepare_eval_features,
    prepare_train_features,
    read_qa_table,
    read_squad_json,
    squad_metrics,
)

FILLER = "The clinic opened on a rainy Monday and patients waited in the long corridor. "


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model("embedded:all-MiniLM-L6-v2"))


def record(question: str, context: str, answer: str, id_: str = "q1") -> dict:
    return {"id": id_, "question": question, "context": context,
            "answers": {"text": [answer], "answer_start": [context.index(answer)]}}


def test_squad_json_and_tables_become_the_same_records(tmp_path):
    context = "Ibuprofen eased my back pain within an hour."
    squad = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "What eased the pain?", "answers": [{"text": "Ibuprofen", "answer_start": 0}]},
        {"id": "b", "question": "Who is the doctor?", "answers": [], "is_impossible": True}]}]}]}
    (tmp_path / "train.json").write_text(json.dumps(squad))
    rows = read_squad_json(tmp_path / "train.json")
    assert rows[0] == record("What eased the pain?", context, "Ibuprofen", "a")
    assert rows[1]["answers"] == {"text": [], "answer_start": []}

    table = pd.DataFrame([{"id": "a", "question": "What eased the pain?", "context": context,
                           "answer_text": "Ibuprofen", "answer_start": 0},
                          {"id": "a", "question": "What eased the pain?", "context": context,
                           "answer_text": "Ibuprofen eased", "answer_start": 0}])
    (only,) = read_qa_table(table)
    assert only["answers"] == {"text": ["Ibuprofen", "Ibuprofen eased"], "answer_start": [0, 0]}
    with pytest.raises(DataError, match="missing column.*answer_start"):
        read_qa_table(table.drop(columns=["answer_start"]))
    (tmp_path / "bad.json").write_text('{"data": [')
    with pytest.raises(DataError, match="bad.json: not valid JSON"):
        read_squad_json(tmp_path / "bad.json")


def test_answers_must_be_where_answer_start_says():
    good = record("What eased the pain?", "Ibuprofen eased my back pain.", "Ibuprofen")
    assert answer_problem(good) is None
    assert answer_problem({**good, "answers": {"text": ["Ibuprofen"], "answer_start": [3]}}) == \
        "answer_not_at_answer_start"
    assert answer_problem({**good, "context": "  "}) == "empty_context"


def test_windows_label_the_answer_tokens_and_mark_windows_without_it(tokenizer):
    context = FILLER * 6 + "The nurse gave her 20 mg of prednisone for the rash. " + FILLER * 2
    example = record("What did the nurse give?", context, "20 mg of prednisone")
    batch = {k: [v] for k, v in example.items()}
    features = prepare_train_features(batch, tokenizer, max_length=64, stride=16)
    assert len(features["input_ids"]) > 3  # the long context is split into overlapping windows
    hits = 0
    for ids, start, end in zip(features["input_ids"], features["start_positions"], features["end_positions"],
                               strict=True):
        if start == 0:
            assert end == 0  # the answer is not (whole) in this window: labels point at [CLS]
            continue
        hits += 1
        assert tokenizer.decode(ids[start:end + 1]) == "20 mg of prednisone"
    assert hits >= 1


def test_postprocessing_maps_the_best_span_back_to_the_context_text(tokenizer):
    context = FILLER * 5 + "Side effects included mild nausea and headaches. " + FILLER
    example = record("Which side effects?", context, "mild nausea and headaches")
    batch = {k: [v] for k, v in example.items()}
    labels = prepare_train_features(batch, tokenizer, max_length=64, stride=16)
    features = prepare_eval_features(batch, tokenizer, max_length=64, stride=16)
    rows = [dict(zip(features.keys(), values, strict=True)) for values in zip(*features.values(), strict=True)]
    n, width = len(rows), max(len(r["input_ids"]) for r in rows)
    start_logits, end_logits = np.zeros((n, width)), np.zeros((n, width))
    for i, (s, e) in enumerate(zip(labels["start_positions"], labels["end_positions"], strict=True)):
        if s:
            start_logits[i, s], end_logits[i, e] = 5.0, 5.0
    start_logits[0, 1] = 9.0  # a question token scores highest: never a valid answer
    predictions = postprocess_predictions([example], rows, start_logits, end_logits)
    assert predictions == {"q1": "mild nausea and headaches"}


def test_official_squad_normalization_and_scores():
    assert normalize_answer("The  Prednisone, 20mg!") == "prednisone 20mg"
    examples = [record("q", "a the cat sat", "the cat", "1"), record("q", "dogs bark loudly", "dogs bark", "2"),
                {"id": "3", "question": "q", "context": "c", "answers": {"text": [], "answer_start": []}}]
    scores = squad_metrics({"1": "Cat", "2": "dogs", "3": ""}, examples)
    assert scores["exact_match"] == pytest.approx(100 * 2 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 * 1 * 0.5 / 1.5 + 1) / 3)
