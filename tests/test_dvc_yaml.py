"""dvc.yaml declares what each stage reads, so DVC's cache is right: every module a stage imports is in
its deps, and every plot is one stage output drawn once."""

from __future__ import annotations

import pytest
import yaml

from tests.code_deps import ROOT, declared_code_deps, expected_code_deps, stages

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())


@pytest.mark.parametrize("name", list(stages()))
def test_each_stage_depends_on_exactly_the_code_it_imports(name):
    spec = stages()[name]
    declared, expected = declared_code_deps(spec), expected_code_deps(spec["cmd"])
    missing, stale = sorted(set(expected) - set(declared)), sorted(set(declared) - set(expected))
    assert not missing and not stale, (
        f"stage {name}: imports {missing} without declaring them (edits there would leave it stale), declares "
        f"{stale} it does not import (edits there re-run it for nothing); `python -m tests.code_deps --write` "
        f"rewrites the code deps of dvc.yaml")


def outputs(spec: dict) -> set[str]:
    return {next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics") for o in spec.get(key, [])}


def test_every_plot_is_a_stage_output_drawn_once_with_a_title():
    assert not [name for name, spec in stages().items() if "plots" in spec], (
        "a stage-level `plots:` entry draws the file a second time as an untitled default chart; declare the file "
        "under the stage's outs (cache: false) and draw it in the top-level plots")
    produced = set().union(*(outputs(spec) for spec in stages().values()))
    ids = []
    for entry in DVC_YAML["plots"]:
        (plot_id, plot), = entry.items()
        ids.append(plot_id)
        assert plot.get("title"), f"plot {plot_id} has no title"
        files = set(plot["y"]) if isinstance(plot["y"], dict) else {plot_id}
        assert files <= produced, f"plot {plot_id} draws {files - produced}, which no stage declares as an output"
    assert len(ids) == len(set(ids))
