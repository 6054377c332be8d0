"""The errors a user can fix: bad input data, bad params, a model or checkpoint that does not fit.

Library code raises them as ordinary exceptions (a notebook can catch them); a stage's entry point,
`run_stage` (stage_entry.py), turns one into a single line on stderr and exit code 1 instead of a traceback. Each
message names the file (row, column) or the params key, and what to do.
"""

from __future__ import annotations


class TransferError(Exception):
    """Something the user can fix; the message says what and how."""


class DataError(TransferError):
    """Bad input data: the message names the file, the column or row, and what to do."""


class ParamsError(TransferError):
    """Bad params.yaml: the message names the key (or line and column) and the valid options."""


class ModelError(TransferError):
    """A model, its weights or a checkpoint that cannot be used as asked."""
