"""What every stage's `python -m stages.<name>` goes through: its share of the cores, and one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable

from transfer.core.errors import TransferError
from transfer.core.threads import JOBS_VARIABLE, apply_share_of_cores, available_cores


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main() with its share of the cores (TRANSFER_JOBS, threads.py): a TransferError ends
    the process with its message and exit code 1."""
    try:
        threads = apply_share_of_cores()
        if threads is not None:  # on stderr: a queued experiment's log says what it ran with
            print(f"{JOBS_VARIABLE}: {threads} torch thread(s) of {available_cores()} cores", file=sys.stderr)
        main()
    except TransferError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
