"""The errors a user can fix: bad input data and bad params.

Each message names the file (row, column) or the params key, and what to do. They end the stage with
that one line instead of a traceback.
"""

from __future__ import annotations


class DataError(SystemExit):
    """Bad input data: the message names the file, the column or row, and what to do."""


class ParamsError(SystemExit):
    """Bad params.yaml: the message names the key (or line and column) and the valid options."""
