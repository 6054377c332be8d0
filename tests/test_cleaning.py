from __future__ import annotations

from stages.params import CleanParams
from stages.text_cleaning import clean_domains, clean_report, normalize_text


def row(id_: str, text: str | None, label: str | None, split: str, domain: str = "target") -> dict:
    return {"id": id_, "text": text, "label": label, "domain": domain, "split": split}


def test_normalize_repairs_mojibake_entities_whitespace_and_urls():
    params = CleanParams(mask_mentions=True)
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
    kept, rejected = clean_domains(domains, ["negative", "neutral", "positive"], CleanParams())
    reasons = {r["id"]: r["reason"] for rows in rejected.values() for r in rows}
    assert reasons == {"s2": "duplicate", "s3": "leaks_target_eval", "s4": "unknown_label", "s5": "empty_text",
                       "t2": "too_short", "t3": "missing_label", "u1": "leaks_target_eval"}
    assert [r["id"] for r in kept["target"]["test"]] == ["x1"]  # evaluation rows are never the ones dropped
    report = clean_report(domains, kept, rejected)
    assert report["source"]["train"] == {"in": 5, "kept": 1, "rejected": 4, "reasons": {
        "duplicate": 1, "empty_text": 1, "leaks_target_eval": 1, "unknown_label": 1}}
    for domain in report.values():
        for entry in domain.values():
            assert entry["in"] == entry["kept"] + entry["rejected"]


def test_dedup_and_guard_can_be_switched_off():
    domains = {"target": {"train": [row("a", "same text", "positive", "train"),
                                    row("b", "same text", "positive", "train")],
                          "test": [row("c", "same text", "positive", "test")]}}
    kept, rejected = clean_domains(domains, ["positive"], CleanParams(dedup="none", leakage_guard=False))
    assert sum(len(v) for v in kept["target"].values()) == 3 and rejected["target"] == []


def test_a_label_seen_in_one_domain_only_stops_clean():
    import pytest

    from stages.clean import check_label_sets
    from stages.corpora import DataError

    kept = {"source": {"train": [row("a", "x", "positive", "train"), row("b", "y", "neutral", "train")]},
            "target": {"train": [row("c", "z", "positive", "train")], "test": [row("d", "w", "positive", "test")]}}
    with pytest.raises(DataError, match=r"\['neutral'\] occur in the source domain .* never in the target"):
        check_label_sets(kept)
    kept["target"]["test"].append(row("e", "v", "neutral", "test"))
    check_label_sets(kept)
