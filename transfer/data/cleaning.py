"""Row-level cleaning rules, and the de-duplication / leakage guard across splits.

Each rejected row keeps its text and gets a reason, so counts reconcile: in = kept + rejected.
QA contexts are never rewritten (answer_start is a character offset into them): only the question
is normalized, and an answer that is not where answer_start says is a reject reason.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import ftfy

from transfer.core.params import CleanParams, Params

if TYPE_CHECKING:  # the stage passes its task in: cleaning does not depend on the tasks
    from transfer.tasks.base import Task

URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"(?<!\w)@\w+")
SPACE = re.compile(r"\s+")
NON_WORD = re.compile(r"[\W_]+", re.UNICODE)

# Evaluation splits claim their texts first, so a duplicate is dropped from training, never from test.
SPLIT_PRIORITY = ("test", "validation", "train", "unlabeled")
# Bounds that keep training data sane; the target test set is what the user gave: its long texts are
# truncated by tokenization, its short ones scored, its repeated reviews each counted.
LENGTH_REASONS = ("too_short", "too_long")


def normalize_text(text: str, params: CleanParams) -> str:
    if params.fix_unicode:
        text = ftfy.fix_text(text)
    text = html.unescape(text)  # ftfy leaves entities alone when the text also has '<'
    if params.mask_urls:
        text = URL.sub("http", text)
    if params.mask_mentions:
        text = MENTION.sub("@user", text)
    return SPACE.sub(" ", text).strip()


def dedup_key(text: str, mode: str) -> str:
    """Key under which two texts count as the same: exact, or case/punctuation/accents folded."""
    if mode == "exact":
        return text
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return NON_WORD.sub(" ", folded).strip()


def normalize_row(row: dict, params: CleanParams, task: Task) -> dict:
    return {**row, **{f: normalize_text(row[f], params) for f in task.normalized_fields if row.get(f)}}


def clean_domains(domains: dict[str, dict[str, list[dict]]], labels: Iterable[str], params: CleanParams,
                  task: Task) -> tuple[dict[str, dict[str, list[dict]]], dict[str, list[dict]]]:
    """Clean every split of every domain; returns (kept rows, rejected rows per domain)."""
    labels = set(labels)
    declared = {fold_label(label): label for label in labels}
    kept: dict[str, dict[str, list[dict]]] = {}
    rejected: dict[str, list[dict]] = {}

    # Texts of the target's evaluation splits: no training data of either domain may contain them.
    target_eval: dict[str, str] = {}
    if params.leakage_guard and "target" in domains:
        for split in ("test", "validation"):
            for row in domains["target"].get(split, []):
                if row[task.text_field]:
                    key = dedup_key(task.key_text(normalize_row(row, params, task)), "normalized")
                    target_eval.setdefault(key, row["id"])

    for domain, splits in domains.items():
        seen: dict[str, str] = {}
        kept[domain] = {split: [] for split in splits}
        rejected[domain] = []
        for split in sorted(splits, key=lambda s: SPLIT_PRIORITY.index(s) if s in SPLIT_PRIORITY else 99):
            for row in splits[split]:
                row = normalize_row(row, params, task)
                if isinstance(row.get("label"), str):
                    row["label"] = declared.get(fold_label(row["label"]), row["label"])
                reason, detail = task.reject_reason(row, labels, params), None
                is_test_set = domain == "target" and split == "test"
                if is_test_set and reason in LENGTH_REASONS:
                    reason = None
                if reason is None:
                    is_training = split in ("train", "unlabeled") or domain == "source"
                    leak_key = dedup_key(task.key_text(row), "normalized")
                    key = dedup_key(task.key_text(row), params.dedup) if params.dedup != "none" else None
                    if is_training and leak_key in target_eval:
                        reason, detail = "leaks_target_eval", target_eval[leak_key]
                    elif key is not None and key in seen and not is_test_set:
                        reason, detail = "duplicate", seen[key]
                    elif key is not None:
                        seen.setdefault(key, row["id"])
                if reason is None:
                    kept[domain][split].append(row)
                else:
                    rejected[domain].append({**row, "reason": reason, "detail": detail})
    return kept, rejected


def fold_label(label: str) -> str:
    """Labels match whatever their case and surrounding spaces: `Positive ` is `positive`."""
    return label.strip().casefold()


def label_variants(rows: Iterable[dict], labels: Iterable[str]) -> dict[str, int]:
    """How many rows carry each case/space variant of a declared label (`"Positive " -> positive`)."""
    declared = {fold_label(label): label for label in labels}
    variants = Counter(f"{row['label']!r} -> {declared[fold_label(row['label'])]}" for row in rows
                       if isinstance(row.get("label"), str) and row["label"] not in declared.values()
                       and fold_label(row["label"]) in declared)
    return dict(variants.most_common())


def clean_report(raw: dict[str, dict[str, list[dict]]], kept: dict[str, dict[str, list[dict]]],
                 rejected: dict[str, list[dict]], labels: Iterable[str] = (),
                 beyond_budget: dict[str, int] | None = None) -> dict:
    """Counts per domain and split, asserted to reconcile: in = kept + rejected (+ beyond_budget: valid train
    rows past data.source_train_max / data.target_train_labeled). Rejected labels are listed with their
    counts, so a label spelled differently from data.labels shows up here, not only as a lower count."""
    beyond_budget = beyond_budget or {}
    report: dict = {}
    for domain, splits in raw.items():
        report[domain] = {}
        for split, rows in splits.items():
            mine = [r for r in rejected[domain] if r["split"] == split]
            entry = {"in": len(rows), "kept": len(kept[domain].get(split, [])), "rejected": len(mine),
                     "reasons": dict(sorted(Counter(r["reason"] for r in mine).items()))}
            if split == "train" and domain in beyond_budget:
                entry["beyond_budget"] = beyond_budget[domain]
            unknown = Counter(str(r["label"]) for r in mine if r["reason"] == "unknown_label")
            if unknown:
                entry["unknown_labels"] = dict(sorted(unknown.items(), key=lambda item: (-item[1], item[0])))
            if variants := label_variants(rows, labels):
                entry["label_variants_matched"] = variants
            if entry["in"] != entry["kept"] + entry["rejected"] + entry.get("beyond_budget", 0):
                raise AssertionError(f"clean lost rows in {domain}/{split}: {entry}")
            report[domain][split] = entry
        for split in sorted(set(kept[domain]) - set(splits)):  # target/unlabeled: train rows past the budget
            n = len(kept[domain][split])
            report[domain][split] = {"in": n, "kept": n, "rejected": 0, "reasons": {},
                                     "from": "train rows beyond the labeled budget"}
    return report


def unknown_labels(splits: dict[str, dict]) -> dict[str, int]:
    """Labels rejected as unknown across a domain's splits (clean_report entries), most frequent first."""
    counts = sum((Counter(entry.get("unknown_labels", {})) for entry in splits.values()), Counter())
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def label_hint(params: Params, domain: str, unknown: dict[str, int]) -> str:
    """The labels a split held instead of data.labels, and how to map them."""
    if not unknown:
        return ""
    seen = ", ".join(f"{label!r} ({n})" for label, n in list(unknown.items())[:10])
    hint = f"; labels seen: {seen}, while data.labels is {params.data.labels}"
    if getattr(getattr(params.data, domain), "kind", "") == "packaged":
        return hint
    if all(label.lstrip("-").isdigit() for label in unknown):
        example = ", ".join(f"{label}: {name}" for label, name in zip(sorted(unknown, key=int), params.data.labels,
                                                                     strict=False))
        return f"{hint}: if these are class ids, name them with data.{domain}.label_map, e.g. {{{example}}}"
    return f"{hint}: rename them with data.{domain}.label_map or add them to data.labels"


def label_warnings(params: Params, report: dict) -> list[str]:
    """More than half of a domain's labeled rows rejected for their label is a mapping problem, not noise."""
    warnings = []
    for domain, splits in report.items():
        labeled = sum(e["in"] for split, e in splits.items() if split != "unlabeled")
        unknown = unknown_labels(splits)
        if labeled and sum(unknown.values()) > labeled / 2:
            warnings.append(f"{sum(unknown.values())} of {labeled} {domain} rows were rejected as unknown_label"
                            + label_hint(params, domain, unknown))
    return warnings
