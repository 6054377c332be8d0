"""ingest writes every row; clean takes the labeled budget from the valid rows, the rest unlabeled."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stages import clean, ingest
from tests.conftest import synthetic_rows, tiny_params, write_corpora
from transfer.core.artifacts import read_jsonl
from transfer.core.errors import DataError


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """params.yaml over the tiny corpora in the working directory; returns (params, corpora folder)."""
    params = tiny_params(tmp_path / "unused-model", write_corpora(tmp_path / "corpora"))
    monkeypatch.chdir(tmp_path)
    return params, tmp_path / "corpora"


def run(params: dict) -> dict:
    with open("params.yaml", "w") as f:
        yaml.safe_dump(params, f)
    ingest.main()
    clean.main()
    return json.loads(Path("metrics/clean.json").read_text())


def test_ingest_writes_every_row_and_clean_keeps_the_rest_unlabeled(workdir):
    params, _ = workdir
    params["data"]["source_train_max"] = 40
    report = run(params)
    raw = {split: read_jsonl(f"data/raw/target/{split}.jsonl") for split in ("train", "validation", "test")}
    assert len(raw["train"]) == 60 and not list(Path("data/raw/target").glob("unlabeled*"))
    assert sum(json.loads(Path("metrics/ingest.json").read_text())["source"].values()) == 90

    train, unlabeled = read_jsonl("data/clean/target/train.jsonl"), read_jsonl("data/clean/target/unlabeled.jsonl")
    assert len(train) == 30 and len(unlabeled) == 30
    assert {r["label"] for r in train} == {"negative", "neutral", "positive"}
    assert all(r["label"] is None and r["split"] == "unlabeled" for r in unlabeled)
    assert not {r["id"] for r in train} & {r["id"] for r in unlabeled}
    assert report["labeled_budget"] == {"source": {"requested": 40, "valid": 63, "used": 40, "beyond_budget": 23},
                                        "target": {"requested": 30, "valid": 60, "used": 30, "beyond_budget": 30}}
    assert report["source"]["train"] == {"in": 63, "kept": 40, "rejected": 0, "reasons": {}, "beyond_budget": 23}
    assert report["target"]["unlabeled"]["kept"] == 30 and report["warnings"] == []


def test_the_labeled_budget_counts_valid_rows_after_cleaning(workdir):
    """100 asked for, 100 trained on, from a file whose labeled rows hold duplicates (the cap used to be
    taken before cleaning: duplicates among the first 100 left 81)."""
    params, corpora = workdir
    rows = [{**row, "text": row["text"].replace("(target", "(review")} for row in synthetic_rows("target", 150, 7)]
    rows += [{**row, "id": f"copy-{row['id']}"} for row in rows[:40]]  # 40 exact duplicates
    pd.DataFrame(rows).to_json(corpora / "target_train.jsonl", orient="records", lines=True)
    params["data"]["target_train_labeled"] = 100
    report = run(params)
    assert len(read_jsonl("data/clean/target/train.jsonl")) == 100
    assert report["labeled_budget"]["target"] == {"requested": 100, "valid": 150, "used": 100, "beyond_budget": 50}
    assert report["target"]["train"]["reasons"] == {"duplicate": 40}
    assert len(read_jsonl("data/clean/target/unlabeled.jsonl")) == 50

    params["data"]["target_train_labeled"] = 170  # more than the data has: all of it, and a warning
    report = run(params)
    assert report["labeled_budget"]["target"] == {"requested": 170, "valid": 150, "used": 150, "beyond_budget": 0,
                                                  "short_by": 20}
    assert report["warnings"] == ["data.target_train_labeled asks for 170 target train examples; only 150 are valid "
                                  "after cleaning (rejected: duplicate 40): training on 150"]


def test_clean_with_nothing_left_stops_and_writes_nothing(workdir):
    params, _ = workdir
    params["clean"]["max_chars"] = 5
    with pytest.raises(DataError, match=r"nothing left in source/train .*'too_long': \d+.*source-source\d+: too_long"):
        run(params)
    assert not Path("data/clean").exists()
    assert not Path("data/rejected").exists()
