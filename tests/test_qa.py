"""Extractive QA pieces: SQuAD JSON and table adapters, answer checks, stride windows whose labels
point at the answer tokens, span post-processing back to text, and the official EM/F1."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from transfer.core.errors import DataError
from transfer.core.modeling import resolve_model
from transfer.tasks.qa import (
    SpanCandidate,
    answer_problem,
    answers_at,
    choose_abstention_threshold,
    normalize_answer,
    postprocess_predictions,
    prepare_eval_features,
    prepare_train_features,
    read_qa_table,
    read_squad_json,
    resampling_group,
    span_candidates,
    squad_metrics,
    squad_v2_metrics,
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
    assert rows[0] == record("What eased the pain?", context, "Ibuprofen", "a") | {"title": "t"}
    assert rows[1]["answers"] == {"text": [], "answer_start": []}
    # The article is the unit the bootstrap draws; without a title, the context is
    assert resampling_group(rows[0]) == resampling_group(rows[1]) == "title:t"
    untitled = record("What eased the pain?", context, "Ibuprofen")
    assert resampling_group(untitled) == resampling_group(untitled | {"title": None}) != resampling_group(
        record("What eased the pain?", context + " Twice.", "Ibuprofen"))

    table = pd.DataFrame([{"id": "a", "question": "What eased the pain?", "context": context,
                           "answer_text": "Ibuprofen", "answer_start": 0},
                          {"id": "a", "question": "What eased the pain?", "context": context,
                           "answer_text": "Ibuprofen eased", "answer_start": 0}])
    (only,) = read_qa_table(table)
    assert only["answers"] == {"text": ["Ibuprofen", "Ibuprofen eased"], "answer_start": [0, 0]}
    assert only["title"] is None and read_qa_table(table.assign(title="t"))[0]["title"] == "t"
    with pytest.raises(DataError, match="missing column.*answer_start"):
        read_qa_table(table.drop(columns=["answer_start"]))
    with pytest.raises(DataError, match="data row 2: answer_start `two`"):
        read_qa_table(table.assign(answer_start=[0, "two"]))
    squad["data"][0]["paragraphs"][0]["qas"][0]["answers"] = [{"text": "Ibuprofen"}]
    (tmp_path / "no_start.json").write_text(json.dumps(squad))
    with pytest.raises(DataError, match=r"qas\[0\]: each answer needs .* integer `answer_start`"):
        read_squad_json(tmp_path / "no_start.json")
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


def unanswerable(id_: str) -> dict:
    return {"id": id_, "question": "q", "context": "c", "answers": {"text": [], "answer_start": []}}


def test_the_null_score_is_the_lowest_cls_score_over_an_examples_windows(tokenizer):
    context = FILLER * 5 + "Side effects included mild nausea and headaches. " + FILLER
    example = record("Which side effects?", context, "mild nausea and headaches")
    features = prepare_eval_features({k: [v] for k, v in example.items()}, tokenizer, max_length=64, stride=16)
    rows = [dict(zip(features.keys(), values, strict=True)) for values in zip(*features.values(), strict=True)]
    assert len(rows) > 1 and all(row["cls_index"] == 0 for row in rows)  # BERT-like: [CLS] first
    start_logits, end_logits = np.zeros((len(rows), 64)), np.zeros((len(rows), 64))
    start_logits[:, 0] = end_logits[:, 0] = 4.0
    start_logits[1, 0] = end_logits[1, 0] = 1.0
    (candidate,) = span_candidates([example], rows, start_logits, end_logits).values()
    assert candidate.null_score == 2.0 and candidate.score == 0.0 and candidate.null_margin == 2.0
    assert postprocess_predictions([example], rows, start_logits, end_logits) == {"q1": candidate.text}
    assert postprocess_predictions([example], rows, start_logits, end_logits, null_score_threshold=1.5) == {"q1": ""}


def test_the_abstention_threshold_is_the_f1_best_one_on_a_crafted_score_table():
    """Answering in order of increasing null margin: a, b right or half right; c and e unanswerable (right
    only when abstained on); d wrong. The F1 sum peaks after b: threshold -1, answering a and b only."""
    examples = [record("q", "aspirin", "aspirin", "a"), record("q", "insulin daily", "insulin daily", "b"),
                unanswerable("c"), record("q", "codeine", "codeine", "d"), unanswerable("e")]
    candidates = {"a": SpanCandidate("aspirin", 3.0, 0.0), "b": SpanCandidate("insulin", 1.0, 0.0),
                  "c": SpanCandidate("warfarin", -0.5, 0.0), "d": SpanCandidate("morphine", -1.0, 0.0),
                  "e": SpanCandidate("heparin", -2.0, 0.0)}
    chosen = choose_abstention_threshold(candidates, examples)
    assert chosen["null_score_threshold"] == -1.0 and chosen["abstained"] == 3 and chosen["unanswerable"] == 2
    assert chosen["validation_f1"] == pytest.approx(100 * (2 + 1 + 2 / 3) / 5, abs=0.01)
    assert answers_at(candidates, -1.0) == {"a": "aspirin", "b": "insulin", "c": "", "d": "", "e": ""}
    # no threshold does better: every margin (and below all of them) tried by brute force
    for threshold in [-4.0, *(c.null_margin for c in candidates.values())]:
        assert squad_metrics(answers_at(candidates, threshold), examples)["f1"] <= chosen["validation_f1"] + 0.01


def test_a_corpus_without_unanswerable_questions_never_abstains():
    examples = [record("q", "aspirin", "aspirin", "a"), record("q", "codeine", "codeine", "d")]
    candidates = {"a": SpanCandidate("aspirin", -9.0, 9.0), "d": SpanCandidate("morphine", -9.0, 9.0)}
    chosen = choose_abstention_threshold(candidates, examples)
    assert chosen["null_score_threshold"] is None
    assert answers_at(candidates, chosen["null_score_threshold"]) == {"a": "aspirin", "d": "morphine"}


def test_squad_v2_scores_split_answerable_and_unanswerable_as_the_official_script():
    """Computed by hand as the official v2.0 evaluate script does: an unanswerable question scores 1 for an
    empty prediction, 0 for any other; HasAns / NoAns are the same means over each group."""
    examples = [record("q", "a the cat sat", "the cat", "1"), record("q", "dogs bark loudly", "dogs bark", "2"),
                unanswerable("3"), unanswerable("4")]
    scores = squad_v2_metrics({"1": "Cat", "2": "dogs", "3": "", "4": "a bird"}, examples)
    half_f1 = 2 * 1 * 0.5 / 1.5  # "dogs" against "dogs bark": precision 1, recall 1/2
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (1 + half_f1 + 1 + 0) / 4)
    assert (scores["HasAns_exact"], scores["HasAns_total"]) == (pytest.approx(50.0), 2)
    assert scores["HasAns_f1"] == pytest.approx(100 * (1 + half_f1) / 2)
    assert (scores["NoAns_exact"], scores["NoAns_f1"], scores["NoAns_total"]) == (50.0, 50.0, 2)
    assert "NoAns_f1" not in squad_v2_metrics({"1": "Cat"}, examples[:1])


def test_official_squad_normalization_and_scores():
    assert normalize_answer("The  Prednisone, 20mg!") == "prednisone 20mg"
    examples = [record("q", "a the cat sat", "the cat", "1"), record("q", "dogs bark loudly", "dogs bark", "2"),
                {"id": "3", "question": "q", "context": "c", "answers": {"text": [], "answer_start": []}}]
    scores = squad_metrics({"1": "Cat", "2": "dogs", "3": ""}, examples)
    assert scores["exact_match"] == pytest.approx(100 * 2 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 * 1 * 0.5 / 1.5 + 1) / 3)


DRUGS = ["ibuprofen", "aspirin", "insulin", "warfarin", "codeine", "morphine", "penicillin", "heparin"]


def drug_questions(n: int, seed: int) -> list[dict]:
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        drug = rng.choice(DRUGS)
        context = f"{FILLER if i % 2 else ''}the patient took {drug} daily for {rng.randint(2, 9)} weeks ."
        rows.append(record("which drug did the patient take ?", context, drug, f"q{i}"))
    return rows


def test_a_tiny_qa_model_learns_to_point_at_the_answer(tiny_model, tmp_path):
    """Trainer + windows + post-processing end to end: exact match far above an untrained model's."""
    import datasets
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding, Trainer

    from transfer.core.modeling import training_arguments
    from transfer.tasks.qa import encode_qa, predict_answers

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    train = datasets.Dataset.from_list(drug_questions(96, 0))
    test = datasets.Dataset.from_list(drug_questions(24, 1))
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_model)
    args = training_arguments(tmp_path, seed=0, epochs=15, learning_rate=3e-3, batch_size=16, eval_each_epoch=False)
    trainer = Trainer(model=model, args=args, train_dataset=encode_qa(train, tokenizer, 32, 8, for_training=True),
                      data_collator=DataCollatorWithPadding(tokenizer))
    test_windows = encode_qa(test, tokenizer, 32, 8, for_training=False)
    assert len(test_windows) > len(test)  # the long contexts were windowed
    before = squad_metrics(predict_answers(model, tokenizer, test, test_windows), list(test))
    trainer.train()
    after = squad_metrics(predict_answers(model, tokenizer, test, test_windows), list(test))
    assert after["exact_match"] >= 75 and after["exact_match"] > before["exact_match"] + 50


def no_answer_questions(n: int, seed: int) -> list[dict]:
    """Half answerable (the drug is in the passage), half not (the passage names no drug): SQuAD v2.0."""
    import random

    rng = random.Random(seed)
    rows = drug_questions(n, seed)
    for i in range(1, n, 2):
        rows[i] = {"id": f"q{i}", "question": "which drug did the patient take ?",
                   "context": f"the patient rested at home for {rng.randint(2, 9)} weeks .",
                   "answers": {"text": [], "answer_start": []}}
    return rows


def test_a_tiny_qa_model_abstains_on_unanswerable_questions_at_the_validation_threshold(tiny_model, tmp_path):
    """Trained with unanswerable windows labeled at [CLS], the model's null score wins where the passage
    holds no answer: at the threshold chosen on validation it abstains on test questions without one, and
    scores above the same model that answers everything."""
    import datasets
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding, Trainer

    from transfer.core.modeling import training_arguments
    from transfer.tasks.qa import encode_qa, predict_candidates

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    train, validation, test = (datasets.Dataset.from_list(no_answer_questions(n, seed))
                               for n, seed in ((96, 0), (24, 1), (24, 2)))
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_model)
    args = training_arguments(tmp_path, seed=0, epochs=15, learning_rate=3e-3, batch_size=16, eval_each_epoch=False)
    Trainer(model=model, args=args, train_dataset=encode_qa(train, tokenizer, 32, 8, for_training=True),
            data_collator=DataCollatorWithPadding(tokenizer)).train()
    candidates = {name: predict_candidates(model, tokenizer, split, encode_qa(split, tokenizer, 32, 8, False))
                  for name, split in (("validation", validation), ("test", test))}
    chosen = choose_abstention_threshold(candidates["validation"], list(validation))
    assert chosen["null_score_threshold"] is not None and chosen["unanswerable"] == 12
    answers = answers_at(candidates["test"], chosen["null_score_threshold"])
    abstained = [example["id"] for example in test if not answers[example["id"]]]
    unanswerable = [example["id"] for example in test if not example["answers"]["text"]]
    assert len(set(abstained) & set(unanswerable)) >= 9  # most of the 12 without an answer
    scores = squad_v2_metrics(answers, list(test))
    never = squad_v2_metrics(answers_at(candidates["test"], None), list(test))
    assert never["NoAns_f1"] == 0 and scores["f1"] > never["f1"] + 25


def test_validation_f1_finds_each_row_of_logits_its_window_in_any_order(tokenizer):
    """Trainer hands the validation logits back in its own (length-sorted, padded) order: span_f1_metrics
    matches each row to its window by the input ids and scores the decoded answers as evaluate would, with
    the abstention threshold chosen on the same questions."""
    import datasets
    from transformers import EvalPrediction

    from transfer.tasks.qa import encode_qa, shipped_f1, span_f1_metrics

    long = FILLER * 5 + "Side effects included mild nausea and headaches. " + FILLER
    examples = datasets.Dataset.from_list([
        record("Which side effects?", long, "mild nausea and headaches", "a"),
        record("Which drug?", "She took aspirin every morning.", "aspirin", "b"),
        {**unanswerable("c"), "question": "Which dose?", "context": "The weather was mild all week."}])
    windows = encode_qa(examples, tokenizer, 64, 16, for_training=True, decodable=True)
    assert len(windows) > 3 and {"offset_mapping", "cls_index", "context", "answers_json"} <= set(windows.column_names)
    width = 80  # wider than any window: Trainer pads logits with -100 and the inputs with pad / -100
    start, end = np.full((len(windows), width), -100.0), np.full((len(windows), width), -100.0)
    for i, (s, e, ids) in enumerate(zip(windows["start_positions"], windows["end_positions"], windows["input_ids"],
                                        strict=True)):
        start[i, :len(ids)] = end[i, :len(ids)] = 0.0
        start[i, s], end[i, e] = 5.0, 5.0  # each window points where its label does ([CLS]: no answer here)
    inputs = np.full((len(windows), width), -100)
    for i, ids in enumerate(windows["input_ids"]):
        inputs[i, :len(ids) + 3] = [*ids, 0, 0, 0]  # a batch's padding, then the gathering's
    order = np.random.default_rng(0).permutation(len(windows))
    compute = span_f1_metrics(windows, tokenizer.pad_token_id, n_best=20, max_answer_length=30)
    assert compute(EvalPrediction(predictions=(start[order], end[order]), label_ids=None,
                                  inputs=inputs[order])) == {"f1": 100.0}
    # A wrong span in one answer window: the score is the one decoded in window order, below 100.
    hit = next(i for i, s in enumerate(windows["start_positions"]) if s and windows[i]["example_id"] == "a")
    start[hit], end[hit] = 0.0, 0.0
    start[hit, 20], end[hit, 21] = 9.0, 9.0
    rows = list(windows)
    expected = shipped_f1(span_candidates(list(examples), rows, start, end), list(examples))
    assert expected < 100.0
    assert compute(EvalPrediction(predictions=(start[order], end[order]), label_ids=None,
                                  inputs=inputs[order]))["f1"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="match no validation window"):
        compute(EvalPrediction(predictions=(start, end), label_ids=None, inputs=np.ones_like(inputs)))
    with pytest.raises(ValueError, match="1 validation window.* got no row of logits"):
        compute(EvalPrediction(predictions=(start[1:], end[1:]), label_ids=None, inputs=inputs[1:]))


def test_a_qa_training_keeps_the_epoch_with_the_best_validation_f1(tiny_model, tmp_path):
    """train_phase on a QA task evaluates validation F1 each epoch (the loss too, for the curves) and keeps the
    best-F1 epoch: the kept model, decoded again, scores what Trainer recorded as the best."""
    import datasets
    from transformers import AutoTokenizer

    from tests.conftest import tiny_params
    from transfer.core.params import parse_params
    from transfer.tasks.qa import encode_qa, predict_candidates, shipped_f1, window_examples
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.trainer import train_phase

    task, params = get_task("qa"), parse_params(tiny_params(tiny_model, {}))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    train = encode_qa(datasets.Dataset.from_list(no_answer_questions(64, 0)), tokenizer, 32, 8, for_training=True)
    validation = encode_qa(datasets.Dataset.from_list(no_answer_questions(24, 1)), tokenizer, 32, 8,
                           for_training=True, decodable=True)
    model = task.load_model(str(tiny_model), tokenizer, params)
    trainer = train_phase(model, tokenizer, train, validation, task=task, params=params, epochs=4,
                          learning_rate=3e-3, run=ResumableRun("models/test", {}, root=tmp_path), phase="target")
    evaluated = [entry for entry in trainer.state.log_history if "eval_f1" in entry]
    assert len(evaluated) == 4 and all("eval_loss" in entry for entry in evaluated)
    assert trainer.state.best_metric == max(entry["eval_f1"] for entry in evaluated)
    examples = window_examples(validation)
    candidates = predict_candidates(model.eval(), tokenizer, examples, validation)
    assert shipped_f1(candidates, examples) == pytest.approx(trainer.state.best_metric)


def test_carving_a_split_keeps_every_article_on_one_side():
    """Questions on one article (its title; a passage where the data names none) go to one side of the cut:
    two passages of one article are about the same subject."""
    from transfer.tasks.qa import records_frame, take_whole_articles

    rows = [record("q", f"Ward {a} passage {p} says aspirin.", "aspirin", f"{a}-{p}-{q}") | {"title": f"ward {a}"}
            for a in range(6) for p in range(2) for q in range(2)]
    rows += [record("q", f"Untitled passage {p} says insulin.", "insulin", f"u-{p}-{q}") for p in range(4)
             for q in range(2)]
    frame = records_frame(rows, "test", "train-")
    for seed in range(5):
        taken, rest = take_whole_articles(frame, 7, seed)
        assert len(taken) >= 7 and len(taken) + len(rest) == len(frame)
        assert not set(taken["title"].dropna()) & set(rest["title"].dropna())
        assert not set(taken["context"]) & set(rest["context"])


def test_validation_windows_keep_the_answers_when_the_first_batch_has_none(tokenizer):
    """datasets.map types a column from its first batch: 1,000 unanswerable questions first must not make the
    gold answers of the later ones unreadable."""
    import datasets

    from transfer.tasks.qa import encode_qa, window_examples

    rows = [{**unanswerable(f"u{i}"), "context": f"Rest at home for {i} days."} for i in range(1000)]
    rows += [record("Which drug?", f"She took aspirin on day {i}.", "aspirin", f"a{i}") for i in range(3)]
    windows = encode_qa(datasets.Dataset.from_list(rows), tokenizer, 64, 16, for_training=True, decodable=True)
    examples = {example["id"]: example for example in window_examples(windows)}
    assert len(examples) == 1003 and examples["u0"]["answers"] == {"text": [], "answer_start": []}
    assert examples["a2"]["answers"] == {"text": ["aspirin"], "answer_start": [9]}


def test_a_file_on_one_article_is_carved_by_passage_instead():
    from transfer.tasks.qa import records_frame
    from transfer.tasks.registry import get_task

    rows = [record("q", f"Passage {p} says aspirin.", "aspirin", f"{p}-{q}") | {"title": "one article"}
            for p in range(6) for q in range(2)]
    taken, rest = get_task("qa").carve(records_frame(rows, "test", "train-"), 3, seed=0)
    assert len(taken) == 4 and len(rest) == 8  # two whole passages: every question on a passage on one side
    assert not set(taken["context"]) & set(rest["context"])
