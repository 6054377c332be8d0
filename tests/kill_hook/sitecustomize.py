"""Imported at start-up by every Python process whose PYTHONPATH holds this folder (tests only).

With KILL_AFTER_CHECKPOINT=<phase>[,<phase>...], a training process SIGKILLs itself right after
the first checkpoint it writes in each named phase: a real kill, at a known point, once per phase
(MARKERS records the phases already killed, so the re-run is left alone).
"""

import os
import signal
from pathlib import Path

if os.environ.get("KILL_AFTER_CHECKPOINT"):
    from transformers import Trainer

    save_checkpoint = Trainer._save_checkpoint

    def save_then_die(self, *args, **kwargs):
        save_checkpoint(self, *args, **kwargs)
        phase = Path(self.args.output_dir).name
        marker = Path(os.environ["KILL_MARKERS"]) / phase
        if phase in os.environ["KILL_AFTER_CHECKPOINT"].split(",") and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    Trainer._save_checkpoint = save_then_die
