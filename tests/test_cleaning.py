from __future__ import annotations

from tests.conftest import shipped_section
from transfer.data.cleaning import clean_domains, clean_report, normalize_text
from transfer.tasks.registry import get_task

CLASSIFICATION = get_task("classification")


def row(id_: str, text: str | None, label: str | None, split: str, domain: str = "target") -> dict:
    return {"id": id_, "text": text, "label": label, "domain": domain, "split": split}


def test_normalize_repairs_mojibake_entities_whitespace_and_urls():
    params = shipped_section("clean", mask_mentions=True)
    assert normalize_text("It&#039;s  fine\n\tcafÃ©", params) == "It's fine café"
    assert normalize_text("see https://x.co/a?b=1 @bob", params) == "see http @user"


def test_every_row_is_kept_or_rejected_with_a_reason():
    domains = {
        "source": {"train": [row("s1", "Great flight!", "positive", "train", "source"),
                             row("s2", "great   FLIGHT", "positive", "train", "source"),   # normalized duplicate
                             row("s3", "The pills were awful.", "negative", "train", "source"),  # leaks target test
                             row("s4", "meh", "mixed", "train", "source"),               # unknown label
                             row("s5", None, "neutral", "train", "source")]},             # empty
        "target": {"train": [row("t1", "Worked well for me", "positive", "train"),
                             row("t2", "ok", "neutral", "train"),                         # too short
                             row("t3", "Nausea every day", None, "train")],               # missing label
                   "unlabeled": [row("u1", "the pills were AWFUL", None, "unlabeled")],   # leaks target test
                   "validation": [row("v1", "Fine, I guess", "neutral", "validation")],
                   "test": [row("x1", "The pills were awful.", "negative", "test")]},
    }
    kept, rejected = clean_domains(domains, ["negative", "neutral", "positive"], shipped_section("clean"),
                                   CLASSIFICATION)
    reasons = {r["id"]: r["reason"] for rows in rejected.values() for r in rows}
    assert reasons == {"s2": "duplicate", "s3": "leaks_target_eval", "s4": "unknown_label", "s5": "empty_text",
                       "t2": "too_short", "t3": "missing_label", "u1": "leaks_target_eval"}
    assert [r["id"] for r in kept["target"]["test"]] == ["x1"]  # evaluation rows are never the ones dropped
    report = clean_report(domains, kept, rejected)
    assert report["source"]["train"] == {"in": 5, "kept": 1, "rejected": 4, "reasons": {
        "duplicate": 1, "empty_text": 1, "leaks_target_eval": 1, "unknown_label": 1},
        "unknown_labels": {"mixed": 1}}
    for domain in report.values():
        for entry in domain.values():
            assert entry["in"] == entry["kept"] + entry["rejected"]


def test_the_target_test_set_is_never_filtered_for_length_or_repetition():
    """Scores cover the test set the user gave: tokenization truncates long reviews; only rows that cannot
    be scored (no text, no or an unknown label) are rejected, and counted."""
    long_review = "The tablets helped. " * 400   # 8,000 characters, over clean.max_chars
    domains = {"target": {
        "train": [row("t1", long_review, "positive", "train"), row("t2", "Worked for me", "positive", "train")],
        "validation": [row("v1", "ok", "neutral", "validation"), row("v2", "Did nothing", "negative", "validation")],
        "test": [row("x1", long_review, "positive", "test"), row("x2", "ok", "neutral", "test"),
                 row("x3", "Did nothing", "negative", "test"), row("x4", "did nothing!", "negative", "test"),
                 row("x5", "", "negative", "test"), row("x6", "fine", "mixed", "test")]}}
    kept, rejected = clean_domains(domains, ["negative", "neutral", "positive"], shipped_section("clean"),
                                   CLASSIFICATION)
    assert [r["id"] for r in kept["target"]["test"]] == ["x1", "x2", "x3", "x4"]
    reasons = {r["id"]: r["reason"] for r in rejected["target"]}
    assert reasons == {"x5": "empty_text", "x6": "unknown_label",   # cannot be scored
                       "t1": "too_long", "v1": "too_short",         # the bounds still hold for training data
                       "v2": "duplicate"}                           # test texts still claim their key first
    report = clean_report(domains, kept, rejected)
    assert report["target"]["test"]["in"] == 6 and report["target"]["test"]["kept"] == 4


def test_dedup_and_guard_can_be_switched_off():
    domains = {"target": {"train": [row("a", "same text", "positive", "train"),
                                    row("b", "same text", "positive", "train")],
                          "test": [row("c", "same text", "positive", "test")]}}
    kept, rejected = clean_domains(domains, ["positive"], shipped_section("clean", dedup="none", leakage_guard=False),
                                     CLASSIFICATION)
    assert sum(len(v) for v in kept["target"].values()) == 3 and rejected["target"] == []


def test_labels_match_whatever_their_case_and_surrounding_spaces_and_are_counted():
    domains = {"target": {"train": [row("a", "good pills", "Positive", "train"),
                                    row("b", "bad pills", " negative ", "train"),
                                    row("c", "fine pills", "positive", "train"),
                                    row("d", "odd pills", "posit1ve", "train")]}}
    kept, rejected = clean_domains(domains, ["negative", "positive"], shipped_section("clean"), CLASSIFICATION)
    assert [r["label"] for r in kept["target"]["train"]] == ["positive", "negative", "positive"]
    report = clean_report(domains, kept, rejected, ["negative", "positive"])
    assert report["target"]["train"]["label_variants_matched"] == {"'Positive' -> positive": 1,
                                                                   "' negative ' -> negative": 1}
    assert report["target"]["train"]["unknown_labels"] == {"posit1ve": 1}


def test_training_sets_a_classifier_cannot_learn_from_stop_clean_and_gaps_are_warned():
    import pytest

    from transfer.core.errors import DataError
    check_classes = CLASSIFICATION.check_training_sets

    def sets(source: list[str], target: list[str], test: list[str]) -> dict:
        return {"source": {"train": [row(f"s{i}", "x", label, "train") for i, label in enumerate(source)]},
                "target": {"train": [row(f"t{i}", "x", label, "train") for i, label in enumerate(target)],
                           "test": [row(f"x{i}", "x", label, "test") for i, label in enumerate(test)]}}

    labels = ["negative", "neutral", "positive"]
    with pytest.raises(DataError, match=r"the target train set has 1 class after cleaning \(positive \(2\)\); a "
                                        r"classifier needs at least two: check data.target_train_labeled"):
        check_classes(sets(labels, ["positive", "positive"], labels), labels)
    with pytest.raises(DataError, match=r"data.labels lists \['neutral'\], but no train example of either domain"):
        check_classes(sets(["negative", "positive"], ["negative", "positive"], labels), labels)
    warnings = check_classes(sets(["negative", "positive"], labels, ["negative", "positive"]), labels)
    assert warnings == ["the source train set has no example of ['neutral']: only the target domain's labels teach "
                        "that class", "the target test set has no example of ['neutral']: that class scores F1 0, "
                        "which lowers macro-F1"]
    assert check_classes(sets(labels, labels, labels), labels) == []
