"""Reading a user's data file (csv, tsv, jsonl, parquet) into a frame of strings, or saying what to fix.

Every error names the file and, where there is one, the line or byte, and what to change in
params.yaml or in the file: the first hour with one's own data is mostly spent on these.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from transfer.core.errors import DataError
from transfer.core.locations import existing_file

FORMAT_OF_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
                    ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
SPREADSHEETS = {".xlsx", ".xlsm", ".xls", ".ods", ".numbers"}
# First bytes of a zip archive (xlsx, ods) and of an OLE2 file (xls): spreadsheets saved under another name.
SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
UTF8 = {"utf-8", "utf8", "utf_8"}


# How the reader of a message sets what it asks for: a corpus in params.yaml, or transfer-predict's options.
PARAMS_ADVICE = {"format": "set `format: {}` for this corpus in params.yaml",
                 "file": "point params.yaml at the .csv file",
                 "encoding": "set `encoding` (e.g. latin-1) for this corpus in params.yaml"}
PREDICT_ADVICE = {"format": "give --format {}", "file": "give the .csv file",
                  "encoding": "convert it (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)"}


def read_table(path: str | Path, fmt: str = "auto", encoding: str = "utf-8",
               advice: dict[str, str] = PARAMS_ADVICE) -> pd.DataFrame:
    """Read csv/tsv/jsonl/parquet; cells keep their values (csv/tsv: all strings). `advice` words what a
    message tells the user to change (PARAMS_ADVICE: params.yaml's corpus keys; PREDICT_ADVICE)."""
    path = existing_file(path)
    if path.suffix.lower() in SPREADSHEETS:
        raise DataError(f"{path}: spreadsheets are not read; save the sheet as CSV (UTF-8) and {advice['file']}")
    if fmt == "auto":
        fmt = FORMAT_OF_SUFFIX.get(path.suffix.lower(), "")
        if not fmt:
            raise DataError(f"{path}: cannot tell the format from the extension; "
                            + advice["format"].format("csv|tsv|jsonl|parquet"))
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    with path.open("rb") as f:
        head = f.read(4096)
    if fmt != "parquet" and head.startswith(SPREADSHEET_MAGIC):
        raise DataError(f"{path}: this is a spreadsheet (Excel or OpenDocument) saved under another name, not "
                        f"{fmt}; save the sheet as CSV (UTF-8) and {advice['file']}")
    if fmt in ("csv", "tsv"):
        _check_separator(path, head, fmt, advice)
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path)
        elif fmt == "jsonl":
            df = read_json_records(path, encoding)
        else:
            df = pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False,
                             na_values=[""], encoding=_python_encoding(encoding), encoding_errors="strict")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: byte {exc.start} is not valid {encoding} ({exc.reason}); re-save the file "
                        f"as UTF-8 or {advice['encoding']}") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot be parsed as {fmt}: {exc}") from None
    if df.empty:
        raise DataError(f"{path}: no rows")
    return df


def _python_encoding(encoding: str) -> str:
    # utf-8-sig reads files with and without a byte-order mark (Excel and Notepad write one).
    return "utf-8-sig" if encoding.lower() in UTF8 else encoding


def _check_separator(path: Path, head: bytes, fmt: str, advice: dict[str, str]) -> None:
    """A header line that splits on the other separator is the commonest mislabelled file."""
    header = head.split(b"\n", 1)[0]
    tabs, commas = header.count(b"\t"), header.count(b",")
    if fmt == "csv" and tabs > commas:
        raise DataError(f"{path}: looks tab-separated (the header has {tabs} tab(s) and {commas} comma(s)): "
                        + advice["format"].format("tsv"))
    if fmt == "tsv" and commas > tabs == 0:
        raise DataError(f"{path}: looks comma-separated (the header has {commas} comma(s) and no tab): "
                        + advice["format"].format("csv"))


def read_json_records(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """JSON Lines (one object per line) or one JSON array of objects, with the line of any error."""
    rows: list[dict] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode(_python_encoding(encoding) if number == 1 else encoding)
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}: line {number}, byte {exc.start + 1} of the line is not valid {encoding} "
                                f"({exc.reason}); re-save the file as UTF-8 or set `encoding` (e.g. latin-1) for "
                                f"this corpus in params.yaml") from None
            if number == 1 and line.lstrip().startswith("["):
                return _json_array(path, encoding)
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number}, column {exc.colno}: not valid JSON ({exc.msg}); each line "
                                f"of a .jsonl file holds one JSON object") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}: line {number}: a JSON {type(value).__name__}, not an object with the "
                                f"columns as keys")
            rows.append(value)
    return pd.DataFrame.from_records(rows)


def _json_array(path: Path, encoding: str) -> pd.DataFrame:
    text = path.read_text(encoding=_python_encoding(encoding))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DataError(f"{path}: a JSON array must hold one object per row, with the columns as keys")
    return pd.DataFrame.from_records(value)


def as_strings(column: pd.Series) -> pd.Series:
    """Cells as strings, missing ones as None (clean rejects them by reason).

    Integer cells stay integers: pandas stores an integer column with one missing cell as floats,
    which would turn labels 0/1 into "0.0"/"1.0".
    """
    def text(value) -> str | None:
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    # Series.map would turn None back into NaN.
    return pd.Series([text(v) for v in column], index=column.index, dtype=object)
