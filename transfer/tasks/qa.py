"""Extractive question answering: reading SQuAD-style data, windowed features, answer spans, EM/F1.

The pieces follow the Hugging Face `run_qa.py` example (stride windows over long contexts, offset
mappings to map token positions back to characters, n-best span search) so that a model trained
here scores like one trained there. Records are `{id, question, context, answers: {text, answer_start}}`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import re
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transfer.core.errors import DataError
from transfer.core.locations import existing_file
from transfer.core.modeling import load_kwargs, load_tokenizer, training_arguments
from transfer.core.params import CleanParams, HubDataset, LocalFiles, Params
from transfer.data.corpora import unique_ids
from transfer.data.tables import read_table
from transfer.tasks.base import Task

QA_COLUMNS = ("question", "context", "answer_text", "answer_start")
# The question is always the first sequence of a pair, the context the second.
CONTEXT = 1
# What a window gives the model at prediction time (its other columns are for decoding and scoring).
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def read_squad_json(path: str | Path) -> list[dict]:
    """SQuAD v1.1/v2.0 JSON (`data[].paragraphs[].qas[]`) as flat records; unanswerable questions keep
    an empty answer list (SQuAD 2.0 `is_impossible`); each keeps its article's `title` (the unit evaluate's
    bootstrap draws: questions on one article are not independent)."""
    path = existing_file(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: expected SQuAD format, an object with a `data` list of articles")
    rows = []
    for a, article in enumerate(document["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            for q, qa in enumerate(paragraph.get("qas", [])):
                where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                if not isinstance(context, str) or not isinstance(qa.get("question"), str):
                    raise DataError(f"{where}: needs a `context` and a `question` string")
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                if not all(isinstance(x, dict) and isinstance(x.get("text"), str)
                           and isinstance(x.get("answer_start"), int) for x in answers):
                    raise DataError(f"{where}: each answer needs a `text` string and an integer `answer_start`")
                rows.append({"id": str(qa.get("id", f"{a}-{p}-{q}")), "question": qa["question"], "context": context,
                             "answers": {"text": [x["text"] for x in answers],
                                         "answer_start": [int(x["answer_start"]) for x in answers]},
                             "title": article.get("title") if isinstance(article.get("title"), str) else None})
    return rows


def read_qa_table(frame, origin: str = "QA table") -> list[dict]:
    """A table with `question, context, answer_text, answer_start` (one answer per row; rows that share
    an id, or else a question and context, are one question with several answers)."""
    missing = [c for c in QA_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{origin}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}")
    grouped: dict[Any, dict] = {}
    for i, row in enumerate(frame.to_dict("records")):
        # An empty cell is NaN in pandas: None, so that clean rejects the row as empty_question / empty_context.
        row.update({c: row[c] if isinstance(row[c], str) else None for c in ("question", "context")})
        key = row.get("id") if row.get("id") is not None else (row["question"], row["context"])
        record = grouped.setdefault(key, {"id": str(row.get("id", i)), "question": row["question"],
                                          "context": row["context"], "answers": {"text": [], "answer_start": []},
                                          "title": row.get("title") if isinstance(row.get("title"), str) else None})
        if isinstance(row["answer_text"], str) and row["answer_text"]:
            try:
                start = int(row["answer_start"])
            except (TypeError, ValueError):
                raise DataError(f"{origin}, data row {i + 1}: answer_start `{row['answer_start']}` is not a "
                                f"character offset (an integer)") from None
            record["answers"]["text"].append(row["answer_text"])
            record["answers"]["answer_start"].append(start)
    return list(grouped.values())


def answer_problem(record: dict) -> str | None:
    """Why a QA record cannot be trained on, or None: every answer must be where answer_start says."""
    if not isinstance(record.get("question"), str) or not record["question"].strip():
        return "empty_question"
    if not isinstance(record.get("context"), str) or not record["context"].strip():
        return "empty_context"
    answers = record["answers"]
    if len(answers["text"]) != len(answers["answer_start"]):
        return "answer_count_mismatch"
    for text, start in zip(answers["text"], answers["answer_start"], strict=True):
        if record["context"][start:start + len(text)] != text:
            return "answer_not_at_answer_start"
    return None


def prepare_train_features(examples: dict[str, list], tokenizer, max_length: int, stride: int,
                           decodable: bool = False) -> dict[str, list]:
    """Question + context windows with the first answer's token span (CLS index when the answer lies
    outside the window or there is none), as in run_qa.py, and the id of the example each came from.
    `decodable` (validation) adds what turns a window's logits back into an answer and scores it: the
    prediction fields of prepare_eval_features, and its example's context and gold answers (`answers_json`).
    Batched `datasets.map` function."""
    encoded = tokenizer([q.lstrip() for q in examples["question"]], examples["context"],
                        truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    sample_map = encoded.pop("overflow_to_sample_mapping")
    offsets_all = encoded.pop("offset_mapping")
    encoded["example_id"] = [examples["id"][s] for s in sample_map]
    if decodable:
        add_prediction_fields(encoded, offsets_all, tokenizer)
        encoded["context"] = [examples["context"][s] for s in sample_map]
        # JSON text: `datasets.map` would type a nested column from its first batch, and a batch of only
        # unanswerable questions (empty answer lists) would type it as null and refuse every later one.
        encoded["answers_json"] = [json.dumps(examples["answers"][s]) for s in sample_map]
    encoded["start_positions"], encoded["end_positions"] = [], []
    for i, offsets in enumerate(offsets_all):
        input_ids = encoded["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        sequence_ids = encoded.sequence_ids(i)
        answers = examples["answers"][sample_map[i]]
        if not answers["answer_start"]:
            encoded["start_positions"].append(cls_index)
            encoded["end_positions"].append(cls_index)
            continue
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        first = sequence_ids.index(CONTEXT)
        last = len(sequence_ids) - 1 - sequence_ids[::-1].index(CONTEXT)
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            encoded["start_positions"].append(cls_index)
            encoded["end_positions"].append(cls_index)
            continue
        start = first
        while start <= last and offsets[start][0] <= start_char:
            start += 1
        end = last
        while end >= first and offsets[end][1] >= end_char:
            end -= 1
        encoded["start_positions"].append(start - 1)
        encoded["end_positions"].append(end + 1)
    return encoded


def prepare_eval_features(examples: dict[str, list], tokenizer, max_length: int, stride: int) -> dict[str, list]:
    """Windows for prediction: each keeps its example id, and offsets only for context tokens."""
    encoded = tokenizer([q.lstrip() for q in examples["question"]], examples["context"],
                        truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    sample_map = encoded.pop("overflow_to_sample_mapping")
    encoded["example_id"] = [examples["id"][s] for s in sample_map]
    add_prediction_fields(encoded, encoded.pop("offset_mapping"), tokenizer)
    return encoded


def add_prediction_fields(encoded, offsets_all: list, tokenizer) -> None:
    """What span_candidates reads from a window: where its null ("no answer") score is read (the token
    unanswerable windows are trained to point at), and character offsets for its context tokens only."""
    encoded["cls_index"] = [ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
                            for ids in encoded["input_ids"]]
    encoded["offset_mapping"] = [
        [o if encoded.sequence_ids(i)[k] == CONTEXT else None for k, o in enumerate(offsets)]
        for i, offsets in enumerate(offsets_all)]


@dataclass(frozen=True)
class SpanCandidate:
    """An example's best answer span and its "no answer" score, over all of its windows."""

    text: str  # the best valid span's text ("" when no window has one)
    score: float  # its start + end logit (-inf without one)
    null_score: float  # the lowest start + end logit at the [CLS] token over the windows (as HF run_qa)
    start: int = -1  # the span's first character in the context (-1 without one)

    @property
    def null_margin(self) -> float:
        """null - best span score (run_qa's score_diff): the higher, the more the model says "no answer"."""
        return self.null_score - self.score


def span_candidates(examples: list[dict], features: list[dict], start_logits: np.ndarray, end_logits: np.ndarray,
                    n_best: int = 20, max_answer_length: int = 30) -> dict[str, SpanCandidate]:
    """Per example id: the best-scoring span (start + end logit) over every window, and the null score."""
    by_example = collections.defaultdict(list)
    for index, feature in enumerate(features):
        by_example[feature["example_id"]].append(index)
    candidates = {}
    for example in examples:
        best_text, best_score, null_score, best_start = "", -math.inf, math.inf, -1
        for index in by_example[example["id"]]:
            offsets = features[index]["offset_mapping"]
            cls = features[index].get("cls_index", 0)
            null_score = min(null_score, float(start_logits[index][cls] + end_logits[index][cls]))
            # The n best among the window's context tokens only: the logits of the question, the special
            # tokens and a batch's padding (which differs between batches) must not crowd them out.
            context = np.array([offset is not None for offset in offsets])
            starts, ends = (np.argsort(np.where(context, logits[index][:len(offsets)], -np.inf))[-1:-n_best - 1:-1]
                            for logits in (start_logits, end_logits))
            for s in starts:
                for e in ends:
                    if (s >= len(offsets) or e >= len(offsets) or offsets[s] is None or offsets[e] is None
                            or e < s or e - s + 1 > max_answer_length):
                        continue
                    score = float(start_logits[index][s] + end_logits[index][e])
                    if score > best_score:
                        best_score, best_text = score, example["context"][offsets[s][0]:offsets[e][1]]
                        best_start = offsets[s][0]
        candidates[example["id"]] = SpanCandidate(best_text, best_score, null_score, best_start)
    return candidates


def answers_at(candidates: dict[str, SpanCandidate], threshold: float | None) -> dict[str, str]:
    """Each example's answer: its best span, or "" (abstain) where null - best exceeds the threshold
    (SQuAD v2.0's null_score_diff_threshold). None never abstains (a corpus with no unanswerable questions)."""
    return {id_: "" if threshold is not None and candidate.null_margin > threshold else candidate.text
            for id_, candidate in candidates.items()}


def choose_abstention_threshold(candidates: dict[str, SpanCandidate], examples: list[dict]) -> dict:
    """The null-score threshold with the best F1 on `examples` (target validation), by the official SQuAD v2.0
    evaluation's search (find_best_thresh): start from abstaining on every question, answer them in order of
    increasing null margin, keep the margin where the summed F1 peaked (the first peak: ties abstain more).
    Validation without an unanswerable question gives None: the model never abstains, as a v1.1 corpus
    expects."""
    unanswerable = sum(not example["answers"]["text"] for example in examples)
    if not unanswerable:
        return {"null_score_threshold": None, "unanswerable": 0, "examples": len(examples),
                "note": "no unanswerable question in target validation: the model never abstains"}
    finite = [margin for example in examples if math.isfinite(margin := candidates[example["id"]].null_margin)]
    if not finite:  # no valid span in any window: every answer is "" whatever the threshold
        return {"null_score_threshold": None, "unanswerable": unanswerable, "examples": len(examples),
                "note": "no answer span found on target validation: nothing to choose a threshold on"}
    total = best = float(unanswerable)  # abstaining everywhere: every unanswerable question right
    threshold = min(finite) - 1.0
    for example in sorted(examples, key=lambda example: candidates[example["id"]].null_margin):
        candidate = candidates[example["id"]]
        if not math.isfinite(candidate.null_margin):  # no span: "" at any threshold, nothing to gain
            break
        golds = example["answers"]["text"]
        total += max(token_f1(candidate.text, gold) for gold in golds) if golds else -float(bool(candidate.text))
        if total > best:
            best, threshold = total, candidate.null_margin
    answers = answers_at(candidates, threshold)
    # unrounded: the shipped threshold must reproduce these counts (a rounded one can flip the boundary example)
    return {"null_score_threshold": threshold, "validation_f1": round(100 * best / len(examples), 2),
            "abstained": sum(not answers[example["id"]] for example in examples), "unanswerable": unanswerable,
            "examples": len(examples)}


def shipped_f1(candidates: dict[str, SpanCandidate], examples: list[dict]) -> float:
    """F1 on `examples` as the model would ship with the abstention threshold chosen on them (the official
    v2.0 evaluation's best_f1; plain F1 where none is unanswerable): what picks the epoch and the learning
    rate, so that they are chosen by the score evaluate reports rather than by the loss."""
    threshold = choose_abstention_threshold(candidates, examples)["null_score_threshold"]
    return squad_metrics(answers_at(candidates, threshold), examples)["f1"]


def window_examples(windows) -> list[dict]:
    """The examples behind decodable windows (prepare_train_features(decodable=True)), each once, in order."""
    examples: dict[str, dict] = {}
    for window in windows.select_columns(["example_id", "context", "answers_json"]):
        if window["example_id"] not in examples:
            examples[window["example_id"]] = {"id": window["example_id"], "context": window["context"],
                                              "answers": json.loads(window["answers_json"])}
    return list(examples.values())


def unpadded(ids, pad_token_id: int | None) -> tuple[int, ...]:
    """A window's token ids without the padding a batch (pad_token_id) or Trainer's gathering (-100) added."""
    kept = [int(t) for t in ids if int(t) != -100]
    while kept and pad_token_id is not None and kept[-1] == pad_token_id:
        kept.pop()
    return tuple(kept)


def span_f1_metrics(windows, pad_token_id: int | None, n_best: int, max_answer_length: int):
    """Trainer's compute_metrics for QA: {"f1": shipped_f1} of the evaluated windows' logits.

    Trainer hands the logits back in the order its evaluation sampler chose (length-sorted here, sharded
    under a distributed launch); with `include_for_metrics=["inputs"]` it hands back each row's input ids
    too, and those find the row's window (identical windows give identical logits, so which copy does not
    matter)."""
    features = list(windows.select_columns(["input_ids", "example_id", "offset_mapping", "cls_index"]))
    examples = window_examples(windows)
    positions: dict[tuple[int, ...], list[int]] = collections.defaultdict(list)
    for index, feature in enumerate(features):
        positions[unpadded(feature["input_ids"], pad_token_id)].append(index)

    def compute(eval_prediction) -> dict[str, float]:
        start, end = (np.asarray(logits) for logits in eval_prediction.predictions[:2])
        if eval_prediction.inputs is None:
            raise ValueError("QA's validation F1 needs Trainer's include_for_metrics=['inputs']")
        start_logits, end_logits = (np.full((len(features), start.shape[1]), -np.inf) for _ in range(2))
        unclaimed = {key: list(rows) for key, rows in positions.items()}
        for row, ids in enumerate(eval_prediction.inputs):
            claimed = unclaimed.get(unpadded(ids, pad_token_id))
            if not claimed:
                raise ValueError(f"evaluation row {row}: its input ids match no validation window")
            index = claimed.pop()
            start_logits[index], end_logits[index] = start[row], end[row]
        if missing := sum(len(rows) for rows in unclaimed.values()):
            raise ValueError(f"{missing} validation window(s) got no row of logits from Trainer's evaluation")
        candidates = span_candidates(examples, features, start_logits, end_logits, n_best, max_answer_length)
        return {"f1": shipped_f1(candidates, examples)}
    return compute


def postprocess_predictions(examples: list[dict], features: list[dict], start_logits: np.ndarray,
                            end_logits: np.ndarray, n_best: int = 20, max_answer_length: int = 30,
                            null_score_threshold: float | None = None) -> dict[str, str]:
    """The best-scoring span over every window of each example, as text; "" where the null score wins by
    more than `null_score_threshold` (None: never)."""
    return answers_at(span_candidates(examples, features, start_logits, end_logits, n_best, max_answer_length),
                      null_score_threshold)


def normalize_answer(text: str) -> str:
    """The official SQuAD normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, truth: str) -> float:
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not predicted or not gold:
        return float(predicted == gold)
    common = collections.Counter(predicted) & collections.Counter(gold)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def answer_outcome(prediction: str, golds: list[str]) -> str:
    """One example's result in words, for the outcome plot (the QA stand-in for a confusion matrix)."""
    if not golds:
        return "abstained (right)" if not prediction else "answered an unanswerable question"
    if not prediction:
        return "abstained (wrong)"
    if any(normalize_answer(prediction) == normalize_answer(g) for g in golds):
        return "exact match"
    return "partial overlap" if max(token_f1(prediction, g) for g in golds) > 0 else "wrong span"


def squad_metrics(predictions: dict[str, str], examples: list[dict]) -> dict[str, float]:
    """Exact match and token F1 in percent, each the best over an example's gold answers (SQuAD v1.1);
    an unanswerable question counts as right only when the prediction is empty."""
    exact, f1 = [], []
    for example in examples:
        golds = example["answers"]["text"] or [""]
        prediction = predictions.get(example["id"], "")
        exact.append(max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds))
        f1.append(max(token_f1(prediction, g) for g in golds))
    n = max(len(examples), 1)
    return {"exact_match": 100 * sum(exact) / n, "f1": 100 * sum(f1) / n, "examples": len(examples)}


def squad_v2_metrics(predictions: dict[str, str], examples: list[dict]) -> dict[str, float]:
    """squad_metrics, with the official SQuAD v2.0 evaluation's split into answerable (HasAns) and
    unanswerable (NoAns) questions where there are any of each."""
    scores = squad_metrics(predictions, examples)
    for name, group in (("HasAns", [e for e in examples if e["answers"]["text"]]),
                        ("NoAns", [e for e in examples if not e["answers"]["text"]])):
        if group:
            part = squad_metrics(predictions, group)
            scores |= {f"{name}_exact": part["exact_match"], f"{name}_f1": part["f1"], f"{name}_total": len(group)}
    return scores


def overlong_questions(questions: list[str], tokenizer, max_length: int, stride: int) -> dict[int, int]:
    """{position: question tokens} of the questions that leave a window no more context tokens than the
    stride: the tokenizer cannot slide over their context and stops the whole batch (a Rust panic)."""
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - stride
    lengths = [len(ids) for ids in tokenizer([q.lstrip() for q in questions], add_special_tokens=False)["input_ids"]]
    return {i: n for i, n in enumerate(lengths) if n >= room}


def overlong_question_reason(tokens: int, max_length: int, stride: int) -> str:
    return (f"question of {tokens} tokens leaves a {max_length}-token window no room beyond the {stride}-token "
            f"stride for its context: shorten it, or raise tokenize.max_length / lower qa.doc_stride")


def encode_qa(examples, tokenizer, max_length: int, stride: int, for_training: bool, decodable: bool = False):
    """A `datasets.Dataset` of QA records -> its windows (train: with answer positions; eval: with
    example ids and context offsets for post-processing; train and `decodable`: both, for validation).
    One example may give several windows."""
    if overlong := overlong_questions(examples["question"], tokenizer, max_length, stride):
        position, tokens = next(iter(overlong.items()))
        raise DataError(f"{len(overlong)} question(s) too long, e.g. id {examples['id'][position]}: "
                        f"{overlong_question_reason(tokens, max_length, stride)}")
    if for_training:
        def prepare(batch):
            return prepare_train_features(batch, tokenizer, max_length, stride, decodable=decodable)
    else:
        def prepare(batch):
            return prepare_eval_features(batch, tokenizer, max_length, stride)
    features = examples.map(prepare, batched=True, remove_columns=examples.column_names, desc="QA windows")
    return features.map(lambda batch: {"length": [len(ids) for ids in batch["input_ids"]]}, batched=True)


def predict_candidates(model, tokenizer, examples, features, batch_size: int = 64, n_best: int = 20,
                       max_answer_length: int = 30) -> dict[str, SpanCandidate]:
    """Each example's best span and null score over the eval windows of `encode_qa`.

    Its own Trainer, without length grouping: with it, Trainer.predict returns windows in a shuffled
    order, and QA windows carry no label ids to re-align them by. The windows go longest first (batches
    of near-equal length) and their logits are put back in feature order.
    """
    from transformers import DataCollatorWithPadding, Trainer  # heavy: model side only

    lengths = np.asarray([len(ids) for ids in features["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    model_inputs = features.select_columns([c for c in MODEL_INPUTS if c in features.column_names]).select(order)
    with tempfile.TemporaryDirectory(prefix="qa-predict-") as scratch:
        args = training_arguments(scratch, seed=0, epochs=1, learning_rate=1e-5, batch_size=1, eval_each_epoch=False,
                                  group_by_length=False, per_device_eval_batch_size=batch_size)
        output = Trainer(model=model, args=args, data_collator=DataCollatorWithPadding(tokenizer)).predict(model_inputs)
    start_logits, end_logits = (np.empty_like(sorted_logits) for sorted_logits in output.predictions[:2])
    start_logits[order], end_logits[order] = output.predictions[:2]
    return span_candidates(list(examples), list(features), np.asarray(start_logits), np.asarray(end_logits),
                           n_best, max_answer_length)


def predict_answers(model, tokenizer, examples, features, batch_size: int = 64, n_best: int = 20,
                    max_answer_length: int = 30, null_score_threshold: float | None = None) -> dict[str, str]:
    """Answer text per example id ("" where the model abstains: null - best span score above the threshold;
    None never abstains)."""
    return answers_at(predict_candidates(model, tokenizer, examples, features, batch_size, n_best,
                                         max_answer_length), null_score_threshold)


def take_whole_articles(df: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(at least n QA rows made of whole articles, the rest): every question on an article (its `title`; a
    passage where the data names none) stays on one side.

    Carving test questions out of a SQuAD-style train set question by question would put the same
    passage in train and test, and a model that memorised the passage would look better than it is;
    passages of one article share their subject, so SQuAD's own splits are by article, and evaluate's
    interval draws the same units (resampling_group). Articles are taken in a seeded random order until n rows.
    """
    groups = pd.Series([resampling_group(row) for row in df[["title", "context"]].to_dict("records")],
                       index=df.index)
    sizes = groups.value_counts()
    order = sizes.index.to_series().sample(frac=1, random_state=seed)
    taken = order[sizes[order].cumsum().shift(fill_value=0) < n]
    inside = groups.isin(taken)
    return df[inside], df[~inside]


def take_whole_contexts(df: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """take_whole_articles by passage: for data whose every question is on one article."""
    return take_whole_articles(df.assign(title=None), n, seed)


def resampling_group(example: dict) -> str:
    """The unit evaluate's bootstrap draws for a question: its article's title, else its context (a short
    hash: questions on one passage stand or fall together)."""
    if example.get("title"):
        return f"title:{example['title']}"
    return "context:" + hashlib.sha1(example["context"].encode("utf-8")).hexdigest()[:12]


def records_frame(records: list[dict], origin: str, id_prefix: str) -> pd.DataFrame:
    """QA records (SQuAD JSON, QA tables, hub datasets) as a frame with unique, prefixed ids and the article
    `title` where the data has one (None elsewhere)."""
    df = pd.DataFrame(records, columns=["id", "question", "context", "answers", "title"]).astype({"title": object})
    df["title"] = [title if isinstance(title, str) and title else None for title in df["title"]]
    unique_ids(df["id"].astype(str), origin)
    return df.assign(id=id_prefix + df["id"].astype(str))


class QuestionAnswering(Task):
    """Extractive QA: a span-extraction head over question + context windows, SQuAD EM and F1."""

    name = "qa"
    metrics = {"f1": "F1", "exact_match": "EM"}
    points = 1.0  # SQuAD EM/F1 are percents
    text_field = "context"
    # Contexts are never rewritten: answer_start is a character offset into them.
    normalized_fields = ("question",)
    formats = ("squad",)
    pipeline_tag = "question-answering"
    # The epoch (and the learning rate) validation F1 picks: with the loss, a seed's best-loss epoch was often
    # not its best-F1 one. Trainer hands back the input ids to match each row of logits to its window.
    best_epoch = {"metric_for_best_model": "f1", "greater_is_better": True, "include_for_metrics": ["inputs"]}
    peft_task_type = "QUESTION_ANS"
    skipped_stages = {
        "augment": "data passed through unchanged (no EDA, no classes to rebalance)",
        "distill": "distillation is implemented for classification (soft labels over classes); task qa would need "
                   "span-logit (QA) or sequence-level (translation) distillation",
    }

    def check_params(self, params: Params) -> list[str]:
        if params.qa.doc_stride >= params.tokenize.max_length // 2:
            return [f"qa.doc_stride: {params.qa.doc_stride} must be below half of tokenize.max_length "
                    f"({params.tokenize.max_length}): the question and the overlap share each window"]
        return []

    def read_file(self, spec: LocalFiles, path: str | list[str], id_prefix: str) -> pd.DataFrame:
        if spec.format == "squad" or (spec.format == "auto" and str(path).endswith(".json")):
            return records_frame(read_squad_json(path), str(path), id_prefix)
        table = read_table(path, spec.format, spec.encoding)
        return records_frame(read_qa_table(table, str(path)), str(path), id_prefix)

    def read_hub_split(self, dataset, spec: HubDataset, origin: str, id_prefix: str) -> pd.DataFrame:
        missing = sorted({"question", "context", "answers"} - set(dataset.column_names))
        if missing:
            raise DataError(f"{origin}: QA needs SQuAD's columns question, context, answers; missing "
                            f"{', '.join(missing)}")
        return records_frame([{**row, "id": row.get("id", i)} for i, row in enumerate(dataset)], origin, id_prefix)

    def carve(self, frame: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        taken, rest = take_whole_articles(frame, n, seed)
        if rest.empty and frame["context"].nunique() > 1:
            print(f"carving {n} QA rows by article took every row ({self.describe_rows(frame)}): carved by whole "
                  f"context instead, so passages of one article are on both sides of the cut")
            return take_whole_contexts(frame, n, seed)
        # may take every row when one passage holds them all (load_corpus then stops)
        return taken, rest

    def describe_rows(self, frame: pd.DataFrame) -> str:
        titles = frame["title"].dropna().nunique() if "title" in frame else 0
        return (f"{len(frame)} questions on {frame['context'].nunique()} contexts"
                + (f" in {titles} titled articles" if titles else ""))

    def unlabeled(self, row: dict) -> dict:
        return {"id": row["id"], "question": None, "context": row["context"], "answers": None}

    def reject_reason(self, row: dict, labels: set[str], params: CleanParams) -> str | None:
        text = row["context"]
        if not isinstance(text, str) or not text.strip():
            return "empty_context"
        if row["split"] != "unlabeled" and (problem := answer_problem(row)):
            return problem
        return self.length_reason(text, params)

    def key_text(self, row: dict) -> str:
        # A question is only a duplicate in the same context.
        return f"{row['question'] or ''}\n{row['context']}"

    def tokenize(self, rows: list[dict], tokenizer, params: Params, split: str) -> dict:
        """Train and validation become windows labeled with the answer's token span; validation's can also be
        decoded into answers (its loss draws the curves, its F1 picks the epoch, the learning rate and the
        abstention threshold). Test becomes prediction windows plus `test_examples`, the records the predicted
        spans are mapped back to. `origin_id` is the example id (one example, several windows)."""
        import datasets  # heavy: model side only (ingest and clean import this module too)

        features = datasets.Features({
            "id": datasets.Value("string"), "question": datasets.Value("string"),
            "context": datasets.Value("string"),
            "answers": {"text": datasets.List(datasets.Value("string")),
                        "answer_start": datasets.List(datasets.Value("int64"))},
            "title": datasets.Value("string")})
        examples = datasets.Dataset.from_list([{k: r.get(k) for k in features} for r in rows], features=features)
        windows = encode_qa(examples, tokenizer, params.tokenize.max_length, params.qa.doc_stride,
                            for_training=split != "test", decodable=split == "validation")
        windows = windows.add_column("origin_id", windows["example_id"])
        return {split: windows, "test_examples": examples} if split == "test" else {split: windows}

    def load_model(self, init: str, tokenizer, params: Params, **options):
        from transformers import AutoModelForQuestionAnswering  # heavy: model side only

        return AutoModelForQuestionAnswering.from_pretrained(init, **load_kwargs(params, init), **options)

    def trivial_baseline(self, target, params: Params) -> dict:
        """Abstaining on every test question: right on each unanswerable one (SQuAD v2.0 scoring)."""
        examples = list(target["test_examples"])
        scores = squad_metrics({example["id"]: "" for example in examples}, examples)
        return {"name": "always abstain", **{metric: scores[metric] for metric in self.metrics}}

    def trainer_metrics(self, evaluation, tokenizer, params: Params):
        """Validation F1 as the model would ship (span_f1_metrics), for best-epoch selection."""
        if evaluation is None or len(evaluation) == 0:
            return None
        return span_f1_metrics(evaluation, tokenizer.pad_token_id, params.qa.n_best, params.qa.max_answer_length)

    def choose_decision_rule(self, model, tokenizer, target, params: Params) -> dict:
        """The null-score threshold above which the model abstains, F1-best on target validation (SQuAD v2.0)."""
        if "validation" not in target or len(target["validation"]) == 0:
            return {"abstention": {"null_score_threshold": None, "note": "no target validation questions"}}
        windows = target["validation"]
        examples = window_examples(windows)
        candidates = predict_candidates(model.eval(), tokenizer, examples, windows, params.evaluate.batch_size,
                                        params.qa.n_best, params.qa.max_answer_length)
        return {"abstention": choose_abstention_threshold(candidates, examples)}

    def score(self, model_dir, target, params: Params) -> tuple[dict, list[dict]]:
        examples, tokenizer = target["test_examples"], load_tokenizer(str(model_dir), params)
        model = self.load_model(str(model_dir), tokenizer, params)
        levers = getattr(model.config, "transfer_levers", None) or {}
        answers = predict_answers(model, tokenizer, examples, target["test"], params.evaluate.batch_size,
                                  params.qa.n_best, params.qa.max_answer_length,
                                  levers.get("abstention", {}).get("null_score_threshold"))
        rows = [{"id": e["id"], "actual": "answerable" if e["answers"]["text"] else "unanswerable",
                 "predicted": answer_outcome(answers[e["id"]], e["answers"]["text"]),
                 "gold": " | ".join(e["answers"]["text"]), "prediction": answers[e["id"]],
                 "f1": 100 * max(token_f1(answers[e["id"]], g) for g in e["answers"]["text"] or [""]),
                 "group": resampling_group(e)}
                for e in examples]
        return squad_v2_metrics(answers, list(examples)), sorted(rows, key=lambda r: r["id"])

    def input_columns(self, corpus) -> dict[str, str]:
        return {"question": "question", "context": "context"}  # QA tables' own column names (read_qa_table)

    def predictor(self, model_dir, params: Params):
        """The best span (text, first character, start + end logit) or an abstention, at the null-score
        threshold the model was shipped with, as evaluate decides."""
        import datasets  # heavy: model side only

        tokenizer = load_tokenizer(str(model_dir), params)
        model = self.load_model(str(model_dir), tokenizer, params).eval()
        levers = getattr(model.config, "transfer_levers", None) or {}
        threshold = levers.get("abstention", {}).get("null_score_threshold")

        max_length, stride = params.tokenize.max_length, params.qa.doc_stride

        def answer(rows: list[dict]) -> list[dict]:
            overlong = overlong_questions([row["question"] for row in rows], tokenizer, max_length, stride)
            refused = {rows[i]["id"]: {"answer": None, "error": overlong_question_reason(tokens, max_length, stride)}
                       for i, tokens in overlong.items()}
            answerable = [row for row in rows if row["id"] not in refused]
            if not answerable:
                return [refused[row["id"]] for row in rows]
            examples = datasets.Dataset.from_list([{key: row[key] for key in ("id", "question", "context")}
                                                   for row in answerable])
            windows = encode_qa(examples, tokenizer, max_length, stride, for_training=False)
            candidates = predict_candidates(model, tokenizer, examples, windows, params.evaluate.batch_size,
                                            params.qa.n_best, params.qa.max_answer_length)
            answers = answers_at(candidates, threshold)

            def answered(row_id: str) -> dict:
                candidate, text = candidates[row_id], answers[row_id]
                return {"answer": text, "abstained": bool(candidate.text) and not text,
                        "error": "" if candidate.text else "no answer span in any window of the context",
                        "start": candidate.start if text else -1, "score": round(candidate.score, 4) if text else None,
                        "null_margin": round(candidate.null_margin, 4)}
            return [refused.get(row["id"]) or answered(row["id"]) for row in rows]
        return answer

    def resampled_score(self, rows: list[dict], params: Params):
        f1 = np.array([float(row["f1"]) for row in rows])  # SQuAD F1 is the mean of the per-question F1
        return lambda positions: float(f1[positions].mean())

    def test_size(self, target) -> int:
        return len(target["test_examples"])

    def adaptation_texts(self, rows: list[dict]) -> list[str]:
        # SQuAD-style data asks several questions about one context: each context once.
        return sorted({self.text(row) for row in rows})
