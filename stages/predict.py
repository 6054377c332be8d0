"""predict: a trained model folder on new texts (not a DVC stage: run it on what you want predicted).

    transfer-predict new_reviews.csv                       # models/target, a table on the terminal
    transfer-predict new.jsonl --model models/student --out predictions.csv
    echo "Worked well, no side effects." | transfer-predict -

The input is csv/tsv/jsonl/parquet with the columns data.target names (text_column for classification;
question and context for QA; source_column for translation), or `--column FIELD=NAME` for this run; `-` reads
one text per line from stdin. The model folder may be models/target (the shipped model), models/baseline,
models/student or any folder the pipeline trained; params.yaml of the project gives its labels, maximum
length and decoding settings. Predictions are what evaluate would score: classification gives the label and
each class's probability, QA the answer with its span and score (or an abstention), translation the output.
An input the model cannot read (empty after normalization) keeps its row, with the reason in `error`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transfer.core.errors import DataError
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.prediction import predict_rows, predictions_table, read_inputs, write_predictions
from transfer.tasks.registry import task_for

SHOWN = 20  # rows printed when the predictions also go to a file


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="transfer-predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="csv/tsv/jsonl/parquet file, or - for one text per line on stdin")
    parser.add_argument("--model", default="models/target", type=Path, help="a trained model folder")
    parser.add_argument("--out", type=Path, help="write every prediction here (.csv/.tsv/.jsonl/.parquet)")
    parser.add_argument("--column", action="append", default=[], metavar="FIELD=NAME",
                        help="the input column holding FIELD (e.g. text=review), instead of data.target's")
    parser.add_argument("--format", default="auto", choices=["auto", "csv", "tsv", "jsonl", "parquet"],
                        help="the input's format when its extension does not say")
    parser.add_argument("--params", default="params.yaml", type=Path, help="the project's params file")
    return parser.parse_args(argv)


def column_overrides(settings: list[str]) -> dict[str, str]:
    overrides = {}
    for setting in settings:
        field, _, column = setting.partition("=")
        if not field or not column:
            raise DataError(f"--column {setting}: write FIELD=NAME, e.g. --column text=review")
        overrides[field] = column
    return overrides


def main(argv: list[str] | None = None) -> None:
    cli = arguments(argv)
    params = load_params(cli.params)
    task = task_for(params)
    if not (cli.model / "config.json").exists():
        raise DataError(f"{cli.model}: not a trained model folder (no config.json); run `make repro` first, or "
                        f"give --model a folder the pipeline trained (models/target, models/baseline, "
                        f"models/student)")
    overrides = column_overrides(cli.column)
    if cli.input == "-":
        inputs = read_inputs(None, task, params, overrides, lines=sys.stdin)
    else:
        inputs = read_inputs(cli.input, task, params, overrides, cli.format)
    if not inputs:
        raise DataError(f"predict: {cli.input if cli.input != '-' else 'stdin'} holds no rows to predict on")
    rows = predict_rows(task, cli.model, inputs, params)
    fields = list({**task.input_columns(params.data.target), **overrides})
    if cli.out:
        write_predictions(rows, cli.out)
        refused = sum(bool(row["error"]) for row in rows)
        print(f"predict: {len(rows)} predictions by {cli.model} in {cli.out}"
              + (f" ({refused} inputs without one: see their `error`)" if refused else ""))
        print(predictions_table(inputs, rows, fields, limit=SHOWN))
    else:
        print(predictions_table(inputs, rows, fields))


def console() -> None:
    """The `transfer-predict` console script."""
    run_stage(main)


if __name__ == "__main__":
    console()
