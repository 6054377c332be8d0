"""The full default pipeline on the real model and corpora (about 15 minutes on 2 cores).

Not part of `make test`; run it with `pytest -m slow`.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import ROOT, DvcProject


@pytest.mark.slow
def test_default_pipeline_transfers_to_drug_reviews(tmp_path):
    project = DvcProject(tmp_path / "project")
    project.root.mkdir()
    shutil.copytree(ROOT / "stages", project.root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, project.root / name)
    project.run("git", "init", "-q")
    project.run("dvc", "init", "-q")
    project.repro()
    report = json.loads((project.root / "metrics/eval.json").read_text())
    assert report["test_examples"] == 379
    # Three classes, 64% positive: a majority-class model scores macro-F1 0.26; both must learn more.
    assert report["baseline"]["macro_f1"] > 0.35
    assert report["target"]["macro_f1"] > 0.35
    pretrain = json.loads((project.root / "metrics/pretrain.json").read_text())
    assert pretrain["after"]["loss"] < pretrain["before"]["loss"] < pretrain["random_head"]["loss"]
