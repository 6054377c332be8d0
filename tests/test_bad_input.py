"""Bad input through the real ingest and clean stages: a clear error and no output, or rows rejected
with a reason and counts that reconcile. One corruption of the source CSV per case."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from stages import clean, ingest
from stages.artifacts import read_jsonl
from stages.corpora import DataError
from stages.params import ParamsError
from tests.conftest import tiny_params, write_corpora


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory with params.yaml and the tiny corpora; returns the source CSV's path."""
    params = tiny_params(tmp_path / "unused-model", write_corpora(tmp_path / "corpora"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "corpora" / "source.csv"


def edit_rows(path, **changes) -> pd.DataFrame:
    """Set cells of the source CSV: changes = {row_number: {column: value}}."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for row, values in changes.items():
        for column, value in values.items():
            df.loc[int(row.removeprefix("row")), column] = value
    df.to_csv(path, index=False)
    return df


def run_stages() -> dict:
    ingest.main()
    clean.main()
    with open("metrics/clean.json") as f:
        return json.load(f)


def rejected(reason: str) -> list[dict]:
    return [r for r in read_jsonl("data/rejected/source.jsonl") if r["reason"] == reason]


def assert_reconciles(report: dict) -> None:
    for domain in report.values():
        for entry in domain.values():
            assert entry["in"] == entry["kept"] + entry["rejected"] == entry["kept"] + sum(entry["reasons"].values())


@pytest.mark.parametrize(("corrupt", "expected"), [
    (lambda p: p.write_text(p.read_text() + '"an unbalanced quote,positive\n'),
     r"source.csv: cannot be parsed as csv: .*EOF inside string"),
    (lambda p: p.write_text(p.read_text().replace("tweet,", "body,", 1)),
     r"source.csv: no text column `tweet` \(columns: id, body, sentiment\); set `text_column`"),
    (lambda p: p.write_bytes(p.read_bytes() + b"99,caf\xe9 au lait,positive\n"),
     r"source.csv: byte \d+ is not valid utf-8 .* set `encoding` \(e.g. latin-1\)"),
    (lambda p: edit_rows(p, row3={"id": "source1"}),
     r"source.csv: 1 id\(s\) occur more than once, e.g. `source1` on data rows \[2, 4\]; ids must be unique"),
    (lambda p: p.write_text("id,tweet,sentiment\n"), r"source.csv: no rows"),
], ids=["unbalanced-quote", "missing-column", "non-utf8", "duplicate-ids", "header-only"])
def test_unreadable_input_stops_ingest_and_writes_nothing(project, corrupt, expected):
    corrupt(project)
    with pytest.raises(DataError, match=expected):
        run_stages()
    root = project.parents[1]
    assert not (root / "data/raw").exists() and not (root / "metrics/ingest.json").exists()


def test_bad_rows_are_rejected_with_their_reason_and_counts_reconcile(project):
    edit_rows(project, row0={"sentiment": "angry"}, row1={"tweet": ""}, row2={"sentiment": ""},
              row4={"tweet": "word " * 200_000})  # a 1 MB tweet
    report = run_stages()
    assert_reconciles(report)
    found = {r["id"]: r["reason"] for r in read_jsonl("data/rejected/source.jsonl")}
    assert {found["source-source0"], found["source-source1"], found["source-source2"], found["source-source4"]} == {
        "unknown_label", "empty_text", "missing_label", "too_long"}
    assert rejected("unknown_label")[0]["label"] == "angry"  # the row itself is kept, not only its id
    assert rejected("too_long")[0]["text"] == ("word " * 200_000).strip()  # whitespace-normalized, whole


def test_a_file_with_no_usable_rows_stops_clean_with_the_reasons(project):
    df = pd.read_csv(project, dtype=str)
    df["sentiment"] = "angry"
    df.to_csv(project, index=False)
    with pytest.raises(DataError, match=r"nothing left in source/train .*'unknown_label': \d+.*Nothing was written"):
        run_stages()
    assert not (project.parents[1] / "data/clean").exists()


def test_a_params_typo_stops_the_first_stage_before_any_work(project):
    params_file = project.parents[1] / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["clean"]["min_char"] = 3
    params_file.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"clean.min_char: unknown key \(typo\?\)"):
        run_stages()
    assert not (project.parents[1] / "data/raw").exists()
