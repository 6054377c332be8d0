"""A trained model folder on new inputs: read a table (or lines of text), normalize it as clean did the
training data, predict in length-sorted chunks with a progress bar, and give one prediction row per input row.

What a prediction row holds is the task's (`Task.predictor`): a label and its per-class probabilities, an
answer with its span and score (or an abstention), a translation. Inputs the model cannot read (an empty
text after normalization) are not dropped: their row carries the reason in `error`, so the output has as
many rows as the input, in its order.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from transfer.core.errors import DataError
from transfer.core.params import Params
from transfer.data.cleaning import normalize_row
from transfer.data.corpora import canonical_frame
from transfer.data.tables import PREDICT_ADVICE, read_table
from transfer.tasks.base import Task

OUTPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
CHUNK = 256  # rows per progress step: the task batches within a chunk (evaluate.batch_size)


def read_inputs(source: str | Path | None, task: Task, params: Params, columns: dict[str, str] | None = None,
                fmt: str = "auto", lines: Iterable[str] | None = None) -> list[dict]:
    """Rows to predict on, with the task's input fields. `source` is a csv/tsv/jsonl/parquet file whose columns
    are named as data.target names them (or as `columns` overrides: {field: column}); `lines` (stdin) are one
    text per line, for tasks that read one field. An `id` column is kept; otherwise rows are numbered."""
    wanted = {**task.input_columns(params.data.target), **(columns or {})}
    if lines is not None:
        if len(wanted) != 1:
            raise DataError(f"predict: task {task.name} reads {', '.join(wanted)} per input; give a csv/tsv/jsonl/"
                            f"parquet file with those columns, not lines of text")
        field = next(iter(wanted))
        texts = [line.rstrip("\n") for line in lines]
        return [{"id": str(i), field: text} for i, text in enumerate(texts)]
    frame = read_table(source, fmt, advice=PREDICT_ADVICE)
    try:
        frame = canonical_frame(frame, wanted, str(source), "")
    except DataError as error:
        raise DataError(f"{error} (or name it for this run: --column {next(iter(wanted))}=<column>)") from None
    return frame.to_dict("records")


def predict_rows(task: Task, model_dir: str | Path, rows: list[dict], params: Params,
                 progress: bool | None = None) -> list[dict]:
    """One prediction row per input row, in input order; `error` names why an input got no prediction."""
    if not rows:
        return []
    predictor = task.predictor(Path(model_dir), params)
    normalized = [normalize_row(row, params.clean, task) for row in rows]
    fields = list(task.input_columns(params.data.target))
    errors = {row["id"]: f"empty {field}" for row in normalized for field in fields if not str(row[field] or "")}
    readable = sorted((row for row in normalized if row["id"] not in errors),
                      key=lambda row: sum(len(str(row[field])) for field in fields))
    predicted: dict[str, dict] = {}
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(readable), desc="predict", unit="row", disable=not show) as bar:
        for start in range(0, len(readable), CHUNK):
            chunk = readable[start:start + CHUNK]
            for row, prediction in zip(chunk, predictor(chunk), strict=True):
                predicted[row["id"]] = prediction
            bar.update(len(chunk))
    return [{"id": row["id"], **(predicted.get(row["id"]) or {}),
             "error": errors.get(row["id"]) or (predicted.get(row["id"]) or {}).get("error", "")} for row in rows]


def write_predictions(rows: list[dict], out: str | Path) -> None:
    """csv, tsv, jsonl or parquet, by the file's suffix."""
    path = Path(out)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: cannot tell the output format from the extension; use one of "
                        f"{', '.join(OUTPUT_FORMATS)}")
    frame = pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Callable[[], None]] = {
        "csv": lambda: frame.to_csv(path, index=False), "tsv": lambda: frame.to_csv(path, sep="\t", index=False),
        "jsonl": lambda: frame.to_json(path, orient="records", lines=True, force_ascii=False),
        "parquet": lambda: frame.to_parquet(path, index=False)}
    writers[fmt]()


def predictions_table(inputs: list[dict], rows: list[dict], fields: list[str], limit: int | None = None,
                      width: int = 60) -> str:
    """A plain-text table of the inputs beside their predictions (texts cut to `width` characters)."""
    def cut(value) -> str:
        text = "" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        text = " ".join(text.split())
        return text if len(text) <= width else text[:width - 1] + "…"

    shown = list(zip(inputs, rows, strict=True))[:limit]
    predicted = dict.fromkeys(key for row in rows for key in row if key not in ("id", "error"))  # first-seen order
    columns = ["id", *fields, *predicted, "error"] if rows else []
    cells = [[cut({**source, **row}.get(column)) for column in columns] for source, row in shown]
    if not any(cell[-1] for cell in cells):  # no input was refused: no empty error column
        columns, cells = columns[:-1], [cell[:-1] for cell in cells]
    widths = [max([len(column), *(len(cell[i]) for cell in cells)]) for i, column in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(line.rstrip() for line in lines)
