"""Reading and writing stage outputs.

Every output is written beside its final path and renamed into place only when complete, so a
killed stage never leaves a half-written file that DVC could cache as if it were whole.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def is_main_process() -> bool:
    """False on every worker but global rank 0 under torchrun / accelerate launch (they set RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces `final` (file or directory).

    Under a distributed launch only rank 0 publishes: the other ranks run the same code (the
    Trainer needs them all) and write into a scratch folder that is thrown away.
    """
    final = Path(final)
    if not is_main_process():
        with tempfile.TemporaryDirectory(prefix=f"rank{os.environ['RANK']}-") as scratch:
            yield Path(scratch) / final.name
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in final.parent.glob(f".{final.name}.tmp-*"):
        pid = leftover.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(leftover)  # the half output of a killed run
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    _remove(final)
    os.replace(tmp, final)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_csv(path: str | Path, rows: list[dict], fieldnames: Sequence[str] | None = None) -> None:
    """Small plot tables for `dvc plots` (header: `fieldnames`, else the first row's keys)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames or (rows[0] if rows else [])))
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_dataset_output(path: str | Path):
    """A saved datasets.Dataset(Dict) stage output, loaded into memory.

    Loaded the default way, a dataset keeps its folder as a cache: sort/select/filter then write
    cache-*.arrow files into it, i.e. into another stage's DVC output, which DVC sees as modified
    (and every consumer as changed) on the next run. In memory, nothing is ever written back.
    """
    import datasets  # heavy (~1 s): ingest and clean, which import this module, never load datasets

    return datasets.load_from_disk(str(path), keep_in_memory=True)


def seed_folders(folder: str | Path, seed: int, offsets: Sequence[int]) -> dict[int, Path]:
    """A headline arm's model folders by training seed: `folder` for `seed`, and <folder>_seeds/<seed + offset>
    for each of finetune.seed_offsets (finetune_target writes them, evaluate and the stages after it read them)."""
    return {seed: Path(folder), **{seed + offset: seeds_folder(folder) / str(seed + offset) for offset in offsets}}


def seeds_folder(folder: str | Path) -> Path:
    """Where a headline arm's extra training seeds live: models/trained/target -> models/trained/target_seeds."""
    folder = Path(folder)
    return folder.with_name(f"{folder.name}_seeds")


# The two headline arms: finetune_target trains each into models/trained/<arm> (+ <arm>_seeds), and evaluate
# ships the `seed` model to models/<arm> with its model card. The stages that read the weights read the trained
# folder, so a change of the card's text re-runs nothing after evaluate.
HEADLINE_ARMS = ("target", "baseline")
TRAINED_MODELS = Path("models/trained")


def trained_folder(arm: str) -> Path:
    """Where finetune_target writes a headline arm (`target` or `baseline`): models/trained/<arm>."""
    if arm not in HEADLINE_ARMS:
        raise ValueError(f"unknown headline arm {arm!r}; expected one of {HEADLINE_ARMS}")
    return TRAINED_MODELS / arm


def shipped_folder(arm: str) -> Path:
    """Where evaluate ships a headline arm with its model card: models/<arm>."""
    if arm not in HEADLINE_ARMS:
        raise ValueError(f"unknown headline arm {arm!r}; expected one of {HEADLINE_ARMS}")
    return Path("models") / arm


def ship_model(trained: str | Path, shipped: str | Path, card: str) -> None:
    """Copy a trained model folder to where it ships, with its model card as README.md, atomically.

    A copy rather than a move: DVC caches each stage's outputs, and the trained folder stays the output (and
    the dependency of the stages after it) of the stage that trained it. The DVC cache stores each file once
    by content, so the copy costs workspace space only."""
    trained = Path(trained)
    if not trained.is_dir() or not any(trained.iterdir()):
        raise FileNotFoundError(f"{trained}: no trained model here; run finetune_target (dvc repro)")
    with atomic_path(shipped) as folder:
        shutil.copytree(trained, folder, ignore=shutil.ignore_patterns("README.md"))
        (folder / "README.md").write_text(card, encoding="utf-8")
