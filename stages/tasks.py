"""What a row holds in each task, and how each task's quality is scored, in one place.

Rows: classification {id, text, label}; qa {id, question, context, answers}; translation
{id, source_text, target_text}. Unlabeled target rows keep only the text domain adaptation reads.
"""

from __future__ import annotations

# Scores reported with their gain over the baseline; the first is the primary one, which decides the label-
# budget curve, the comparison and negative transfer: SQuAD F1 for QA; chrF for translation, because corpus
# BLEU is 0 for most weak systems on small test sets (no 4-gram matches) and then cannot rank them, while
# chrF still does (the WMT metrics tasks also rank it above BLEU).
METRICS = {"classification": ("macro_f1", "accuracy"), "qa": ("f1", "exact_match"), "translation": ("chrf", "bleu")}
METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy", "f1": "F1", "exact_match": "EM", "chrf": "chrF",
                "bleu": "BLEU"}
# Points per unit of the metric: macro-F1 is a fraction, SQuAD EM/F1 and sacrebleu scores are percents.
POINTS = {"classification": 100.0, "qa": 1.0, "translation": 1.0}


DOMAIN_TEXT = {"classification": "text", "qa": "context", "translation": "source_text"}


def primary_metric(task: str) -> str:
    return METRICS[task][0]


def domain_text(row: dict, task: str) -> str:
    """The text a domain is made of: what pretrain_domain adapts on and domain_shift compares."""
    return row[DOMAIN_TEXT[task]]


def unlabeled(row: dict, task: str) -> dict:
    """A labeled row stripped to unlabeled text (target train rows beyond data.target_train_labeled)."""
    if task == "qa":
        return {"id": row["id"], "question": None, "context": row["context"], "answers": None}
    if task == "translation":
        return {"id": row["id"], "source_text": row["source_text"], "target_text": None}
    return {**row, "label": None}
