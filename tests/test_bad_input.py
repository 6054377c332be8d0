"""Bad input through the real ingest and clean stages: a clear error and no output, or rows rejected
with a reason and counts that reconcile. One corruption of the source CSV per case."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stages import clean, ingest
from tests.conftest import ROOT, tiny_params, write_corpora
from transfer.core.artifacts import read_jsonl
from transfer.core.errors import DataError, ParamsError


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
    for domain in ("source", "target"):
        for entry in report[domain].values():
            assert entry["in"] == entry["kept"] + entry["rejected"] + entry.get("beyond_budget", 0)
            assert entry["rejected"] == sum(entry["reasons"].values())


def set_params(**changes) -> None:
    """Update params.yaml: changes = {"data.source": {...}} merges into that section."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        section = params
        for part in path:
            section = section[part]
        section[key] = {**section[key], **value} if isinstance(value, dict) and isinstance(section.get(key), dict) \
            else value
    with open("params.yaml", "w") as f:
        yaml.safe_dump(params, f)


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
    (lambda p: p.write_text(p.read_text().replace(",", "\t")),
     r"source.csv: looks tab-separated \(the header has 2 tab\(s\) and 0 comma\(s\)\): set `format: tsv` for this "
     r"corpus in params.yaml"),
    (lambda p: p.write_bytes(b"PK\x03\x04" + bytes(200)),
     r"source.csv: this is a spreadsheet \(Excel or OpenDocument\) saved under another name, not csv; save the sheet "
     r"as CSV \(UTF-8\) and point params.yaml at the .csv file"),
    (lambda p: (p.unlink(), p.mkdir()),
     r"source.csv: is a directory; give the data file itself in data.source.path \(one file per split\)"),
], ids=["unbalanced-quote", "missing-column", "non-utf8", "duplicate-ids", "header-only", "tsv-named-csv",
        "xlsx-named-csv", "directory"])
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


def test_spreadsheets_are_named_as_such(project):
    (project.parent / "source.xlsx").write_bytes(b"PK\x03\x04" + bytes(200))
    set_params(**{"data.source": {"path": str(project.parent / "source.xlsx")}})
    with pytest.raises(DataError, match=r"source.xlsx: spreadsheets are not read; save the sheet as CSV \(UTF-8\) "
                                        r"and point params.yaml at the .csv file"):
        run_stages()


def test_jsonl_with_a_byte_order_mark_is_read_and_a_bad_line_is_located(project):
    target_train = project.parent / "target_train.jsonl"
    target_train.write_bytes(b"\xef\xbb\xbf" + target_train.read_bytes())  # as Notepad and Excel save UTF-8
    report = run_stages()
    assert report["target"]["train"]["in"] == 60
    lines = target_train.read_text(encoding="utf-8-sig").splitlines()
    lines[2] = lines[2].rstrip("}")  # a truncated object on line 3
    target_train.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"target_train.jsonl: line 3, column \d+: not valid JSON \(Expecting ',' "
                                        r"delimiter\); each line of a .jsonl file holds one JSON object"):
        run_stages()


def test_a_params_yaml_syntax_error_is_one_line_with_line_and_column(project):
    params = Path("params.yaml").read_text().splitlines()
    params[3] = params[3].replace(":", "", 1)  # line 4 loses its `:`
    Path("params.yaml").write_text("\n".join(params) + "\n")
    result = subprocess.run([sys.executable, "-m", "stages.ingest"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and result.stdout == ""
    expected = (r"params.yaml:4:3: not valid YAML \(could not find expected ':'\); fix that line \(indentation, a "
                r"missing `:` or an unclosed quote or bracket\)\n")
    assert re.fullmatch(expected, result.stderr), result.stderr


def test_labels_that_differ_in_case_or_spaces_are_matched_and_counted(project):
    df = pd.read_csv(project, dtype=str, keep_default_na=False)
    df["sentiment"] = df["sentiment"].map({"positive": "Positive", "negative": "negative ", "neutral": "NEUTRAL"})
    df.to_csv(project, index=False)
    report = run_stages()
    assert_reconciles(report)
    assert report["source"]["train"]["rejected"] == 0
    assert report["source"]["train"]["label_variants_matched"] == {"'Positive' -> positive": 21,
                                                                   "'negative ' -> negative": 21,
                                                                   "'NEUTRAL' -> neutral": 21}
    assert {r["label"] for r in read_jsonl("data/clean/source/train.jsonl")} == {"negative", "neutral", "positive"}


def test_integer_labels_are_named_by_a_label_map_and_stop_clean_without_one(project, capsys):
    df = pd.read_csv(project, dtype=str, keep_default_na=False)
    df["sentiment"] = df["sentiment"].map({"negative": "0", "neutral": "1", "positive": "2"})
    df.to_csv(project, index=False)
    with pytest.raises(DataError, match=r"nothing left in source/train \(63 rows in, rejected: \{'unknown_label': "
                                        r"63\}; .*labels seen: '0' \(21\), '1' \(21\), '2' \(21\), while data.labels "
                                        r"is \['negative', 'neutral', 'positive'\]: if these are class ids, name them "
                                        r"with data.source.label_map, e.g. \{0: negative, 1: neutral, 2: positive\}"):
        run_stages()
    set_params(**{"data.source": {"label_map": {0: "negative", 1: "neutral", 2: "positive"}}})
    report = run_stages()
    assert report["source"]["train"]["kept"] == 63 and "unknown_labels" not in report["source"]["train"]


def test_an_integer_label_column_with_a_missing_cell_keeps_integer_labels(project):
    """pandas stores an integer column with a missing cell as floats: labels must not become "0.0"."""
    target_train = project.parent / "target_train.jsonl"
    rows = [json.loads(line) for line in target_train.read_text().splitlines()]
    for row in rows:
        row["label"] = {"negative": 0, "neutral": 1, "positive": 2}[row["label"]]
    rows[5]["label"] = None
    target_train.write_text("".join(json.dumps(row) + "\n" for row in rows))
    set_params(**{"data.target": {"label_map": {0: "negative", 1: "neutral", 2: "positive"}}})
    report = run_stages()
    assert {r["label"] for r in read_jsonl("data/raw/target/train.jsonl")} == {"negative", "neutral", "positive", None}
    assert report["target"]["train"]["reasons"] == {"missing_label": 1}
    assert "unknown_labels" not in report["target"]["train"]


def test_unknown_labels_are_listed_with_their_counts_and_a_mostly_rejected_domain_is_a_warning(project, capsys):
    df = pd.read_csv(project, dtype=str, keep_default_na=False)
    df["sentiment"] = df["sentiment"].replace({"negative": "neg"})   # 30 rows
    df.loc[df.index[df["sentiment"] == "neutral"][:20], "sentiment"] = "meh"  # 20 of the 30 neutral ones
    df.to_csv(project, index=False)
    report = run_stages()
    assert_reconciles(report)
    assert report["source"]["train"]["unknown_labels"] == {"neg": 21, "meh": 14}  # of the 63 train rows
    printed = capsys.readouterr().out
    assert "clean source: rejected as unknown_label (not in data.labels): 'neg' (30), 'meh' (20)" in printed
    assert ("clean: WARNING: 50 of 90 source rows were rejected as unknown_label; labels seen: 'neg' (30), "
            "'meh' (20), while data.labels is ['negative', 'neutral', 'positive']: rename them with "
            "data.source.label_map or add them to data.labels") in printed
    assert json.loads(Path("metrics/clean.json").read_text())["warnings"][0].startswith("50 of 90 source rows")


def test_a_train_set_with_one_class_stops_clean(project):
    target_train = project.parent / "target_train.jsonl"
    rows = [json.loads(line) for line in target_train.read_text().splitlines()]
    target_train.write_text("".join(json.dumps({**row, "label": "positive"}) + "\n" for row in rows))
    with pytest.raises(DataError, match=r"clean: the target train set has 1 class after cleaning \(positive \(30\)\); "
                                        r"a classifier needs at least two"):
        run_stages()
    assert not (project.parents[1] / "data/clean").exists()


def test_library_errors_are_ordinary_exceptions_and_a_stage_turns_them_into_one_line(project, capsys):
    """A notebook catches DataError with `except Exception`; `python -m stages.<name>` prints one line."""
    from transfer.core.errors import TransferError
    from transfer.core.stage_entry import run_stage

    project.write_text("id,tweet,sentiment\n")
    try:
        ingest.main()
    except Exception as error:  # noqa: BLE001 - the point: an ordinary exception, not SystemExit
        caught = error
    assert isinstance(caught, DataError) and isinstance(caught, TransferError)
    with pytest.raises(SystemExit) as exit_info:
        run_stage(ingest.main)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"{project}: no rows\n"
