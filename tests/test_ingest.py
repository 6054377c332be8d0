"""ingest as a stage: canonical rows, the scarcity cap, and unlabeled target text."""

from __future__ import annotations

import json

import yaml

from stages.artifacts import read_jsonl
from tests.conftest import tiny_params, write_corpora


def test_ingest_caps_labeled_target_and_keeps_the_rest_unlabeled(tmp_path, monkeypatch):
    corpora = write_corpora(tmp_path / "corpora")
    params = tiny_params(tmp_path / "unused-model", corpora)
    params["data"]["source_train_max"] = 40
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)

    from stages import ingest

    ingest.main()
    raw = tmp_path / "data/raw"
    target_train = read_jsonl(raw / "target/train.jsonl")
    unlabeled = read_jsonl(raw / "target/unlabeled.jsonl")
    assert len(target_train) == 30 and len(unlabeled) == 30
    assert {r["label"] for r in target_train} == {"negative", "neutral", "positive"}
    assert all(r["label"] is None and r["split"] == "unlabeled" for r in unlabeled)
    assert not {r["id"] for r in target_train} & {r["id"] for r in unlabeled}
    counts = json.loads((tmp_path / "metrics/ingest.json").read_text())
    assert counts["source"]["train"] == 40
    # nothing silently dropped: every source row is in a split or counted as capped away
    assert sum(counts["source"].values()) == 90
    assert set(read_jsonl(raw / "source/test.jsonl")[0]) == {"id", "text", "label", "domain", "split"}


def test_clean_with_nothing_left_stops_and_writes_nothing(tmp_path, monkeypatch):
    import pytest

    from stages import clean, ingest
    from stages.corpora import DataError

    params = tiny_params(tmp_path / "unused-model", write_corpora(tmp_path / "corpora"))
    params["clean"]["max_chars"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    ingest.main()
    with pytest.raises(DataError, match=r"nothing left in source/train .*'too_long': \d+.*source-source\d+: too_long"):
        clean.main()
    assert not (tmp_path / "data/clean").exists() and not (tmp_path / "data/rejected").exists()
