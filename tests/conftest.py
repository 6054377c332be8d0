"""Shared fixtures: a tiny config-built BERT with the real tokenizer, small corpora, and a DVC project
in a temporary git repository that runs the real dvc.yaml on them in seconds."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from filelock import FileLock

from tests.tiny_model import build_tiny_bert

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """Under `pytest -n N` (pytest-xdist), each worker, and every stage its DVC projects run, takes its
    share of the cores: N torch processes with a thread per core each would fight for the cores.
    Through OMP_NUM_THREADS, which the stages inherit, and not TRANSFER_JOBS, which also makes every stage
    say so on stderr, where tests read one-line errors."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        from transfer.core.threads import apply_share_of_cores

        apply_share_of_cores(workers)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that run the DVC pipeline (marked `dag`, a minute or more each) first: pytest-xdist hands
    tests out in order, so the long ones spread over the workers and the many short ones fill the gaps
    at the end, instead of one long test running alone while the other workers idle."""
    for item in items:  # a test on a DVC project of this file's fixtures needs no mark of its own
        if {"built_project", "built_copy", "dvc_project"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dag)
    items.sort(key=lambda item: item.get_closest_marker("dag") is None)


WORDS = {
    "positive": ["great", "wonderful", "love", "excellent", "happy", "fantastic", "best", "helped"],
    "negative": ["awful", "terrible", "hate", "worst", "horrible", "pain", "useless", "sick"],
    "neutral": ["okay", "average", "some", "normal", "usual", "plain", "maybe", "moderate"],
}


def synthetic_rows(domain: str, n: int, seed: int) -> list[dict]:
    """Sentences whose label is told by a few sentiment words, in a domain-specific frame."""
    rng = random.Random(seed)
    frame = {"source": "the flight was {} and {} #travel", "target": "this medication was {} , side effects {} ."}
    rows = []
    for i in range(n):
        label = ("negative", "neutral", "positive")[i % 3]
        text = frame[domain].format(*rng.sample(WORDS[label], 2)) + f" ({domain} {i})"
        rows.append({"id": f"{domain}{i}", "text": text, "label": label})
    return rows


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def write_corpora(folder: Path) -> dict:
    """Source as one CSV (split with the seed), target as given train/validation/test files."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(synthetic_rows("source", 90, 1)).rename(columns={"text": "tweet", "label": "sentiment"}).to_csv(
        folder / "source.csv", index=False)
    target = synthetic_rows("target", 120, 2)
    target[0] = {"id": "short", "text": "Awful.", "label": "negative"}  # removed by clean.min_chars: 7
    pd.DataFrame(target[:60]).to_json(folder / "target_train.jsonl", orient="records", lines=True)
    pd.DataFrame(target[60:84]).to_csv(folder / "target_validation.tsv", sep="\t", index=False)
    pd.DataFrame(target[84:]).to_parquet(folder / "target_test.parquet")
    return {
        "source": {"kind": "files", "path": str(folder / "source.csv"), "text_column": "tweet",
                   "label_column": "sentiment"},
        "target": {"kind": "files", "train": str(folder / "target_train.jsonl"),
                   "validation": str(folder / "target_validation.tsv"), "test": str(folder / "target_test.parquet")},
    }


def tiny_params(model: Path, corpora: dict) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["name"] = str(model)
    params["data"].update(corpora, source_train_max=0, target_train_labeled=30)
    params["tokenize"]["max_length"] = 32
    params["pretrain_domain"].update(max_length=32, epochs=1.0, head_warmup_epochs=1.0, batch_size=8)
    # A grid of two learning rates and two training seeds per headline arm: the tiny DAG runs both paths.
    params["finetune"].update(target_epochs=4, source_epochs=1, batch_size=8, learning_rate=[3e-3, 1e-3],
                              source_learning_rate=3e-3, seed_offsets=[1])
    params["label_budget"] = {"enabled": True, "sizes": [12], "seeds": [42]}
    params["domain_shift"].update(sample_size=40)
    params["distill"]["enabled"] = True  # off in the default run; the tiny DAG trains the student
    return params


class DvcProject:
    """A copy of the pipeline in a fresh git + DVC repository."""

    def __init__(self, root: Path, first_run: list[str] | None = None):
        self.root = root
        self.first_run = first_run or []  # the stages its first `dvc repro` ran (built_project)

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "DVC_NO_ANALYTICS": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
        result = subprocess.run(args, cwd=self.root, env=env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def repro(self, *args: str) -> list[str]:
        """Run `dvc repro`; returns the stages that actually ran, but `inputs`, which runs every time (it
        fingerprints the data files params name) and is checked on its own in tests/test_data_inputs.py."""
        return ran_stages(self.run("dvc", "repro", *args).stdout)

    def stale(self, *targets: str) -> dict:
        """`dvc status --json` without the always-run `inputs` stage: {} when everything is up to date."""
        status = json.loads(self.run("dvc", "status", "--json", *targets).stdout or "{}")
        return {stage: changes for stage, changes in status.items() if changes != ["always changed"]}

    @property
    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def set_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def ran_stages(dvc_output: str) -> list[str]:
    """The stages a `dvc repro` / `dvc exp run` printed as running, `inputs` left out."""
    return [name for line in dvc_output.splitlines() if line.startswith("Running stage")
            if (name := line.split("'")[1]) != "inputs"]


def make_project(root: Path, params: dict) -> DvcProject:
    root.mkdir(parents=True, exist_ok=True)
    for code in ("stages", "transfer"):
        shutil.copytree(ROOT / code, root / code, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    project = DvcProject(root)
    project.set_params(params)
    project.run("git", "init", "-q")
    project.run("dvc", "init", "-q")
    shutil.copy(ROOT / ".dvcignore", root / ".dvcignore")  # bytecode is not a code dependency
    project.run("dvc", "config", "core.analytics", "false")
    shutil.copytree(ROOT / ".dvc" / "plots", root / ".dvc" / "plots")  # custom plot templates
    return project


@pytest.fixture
def dvc_project(tmp_path, tiny_model) -> DvcProject:
    corpora = write_corpora(tmp_path / "corpora")
    return make_project(tmp_path / "project", tiny_params(tiny_model, corpora))


def built_params(model: Path, corpora: dict) -> dict:
    """tiny_params with every stage doing something: one short target review for clean to reject, and a
    label-budget size equal to the labeled budget for label_budget to drop with a note."""
    params = tiny_params(model, corpora)
    params["clean"]["min_chars"] = 7  # the tiny target train set has one 6-character review
    params["label_budget"]["sizes"] = [12, 30]  # 30 is the full labeled budget: dropped with a note
    return params


@pytest.fixture(scope="session")
def built_project(tmp_path_factory, worker_id) -> DvcProject:
    """The tiny DAG after one `dvc repro`, committed, run once per `pytest` run: the tests that only read
    its outputs share it; a test that changes params or re-runs stages takes `built_copy`. Under pytest-xdist
    the first worker to need it builds it, under a file lock, in the folder the workers share; the others
    wait for it and read it. Its DVC cache and lock file make every stage of a copy up to date."""
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    folder, record = shared / "built", shared / "built" / "first_run.json"
    with FileLock(str(shared / "built.lock")):
        if record.is_file():
            return DvcProject(folder / "project", json.loads(record.read_text()))
        shutil.rmtree(folder, ignore_errors=True)  # what a failed build on another worker left
        model = build_tiny_bert(folder / "tiny-bert")
        project = make_project(folder / "project", built_params(model, write_corpora(folder / "corpora")))
        project.first_run = project.repro()
        project.run("git", "add", "-A")  # `dvc exp run` starts from a commit
        project.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "the tiny DAG, run once")
        record.write_text(json.dumps(project.first_run))
    return project


@pytest.fixture
def built_copy(built_project, tmp_path) -> DvcProject:
    """A private copy of built_project (git repository, DVC cache, outputs) that a test may change and re-run.
    DVC's own state (.dvc/tmp) stays behind: it holds the original's paths."""
    root = tmp_path / "project"
    shutil.copytree(built_project.root, root, symlinks=True, ignore=lambda folder, names:
                    ["tmp"] if Path(folder).name == ".dvc" else [])
    return DvcProject(root, built_project.first_run)


def shipped_params():
    """The shipped params.yaml, validated: the schema has no defaults, so sections come from here."""
    from transfer.core.params import parse_params

    return parse_params(yaml.safe_load((ROOT / "params.yaml").read_text()))


def shipped_section(name: str, **changes):
    """One section of the shipped params with some values changed, e.g. shipped_section("clean", dedup="none")."""
    return getattr(shipped_params(), name).model_copy(update=changes)
