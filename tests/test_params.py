from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT
from transfer.core.errors import ParamsError
from transfer.core.params import parse_params


def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_shipped_params_are_valid():
    params = parse_params(default_params())
    assert params.finetune.strategy == "sequential"
    assert params.data.source.kind == "packaged"


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda p: p["finetune"].update(stratgy="x"), "finetune.stratgy: unknown key"),
    (lambda p: p["finetune"].update(strategy="magic"),
     "unknown strategy `magic`; choose one of target_only, source_only, sequential, joint, dann, setfit, "
     "sequential_setfit or auto"),
    (lambda p: p["finetune"].update(logit_adjustment=[-1.0]), "finetune.logit_adjustment.0"),
    (lambda p: p["finetune"].update(learning_rate=[]), "finetune.learning_rate"),
    (lambda p: p["finetune"].update(learning_rate=[1e-4, 0.0]), "finetune.learning_rate"),
    (lambda p: p["finetune"].update(seed_offsets=[1, 1]), "each offset once"),
    (lambda p: p["finetune"].update(seed_offsets=[0]), "finetune.seed_offsets.0"),
    (lambda p: p["tokenize"].update(max_length="long"), "tokenize.max_length"),
    (lambda p: p["clean"].update(dedup="fuzzy"), "'none', 'exact' or 'normalized'"),
    (lambda p: p["data"]["source"].update(name="imdb"), "crowdflower_tweets"),
    (lambda p: p["data"].update(source={"kind": "files"}), "give either `path`"),
    (lambda p: p.update(sead=1), "sead: unknown key"),
])
def test_bad_params_name_the_key_and_the_options(edit, expected):
    raw = default_params()
    edit(raw)
    with pytest.raises(ParamsError) as error:
        parse_params(raw)
    assert expected in str(error.value)


def test_a_key_missing_from_params_yaml_is_reported_not_defaulted():
    # The schema holds no defaults: a value lives once, in params.yaml.
    raw = default_params()
    del raw["finetune"]["learning_rate"]
    with pytest.raises(ParamsError) as error:
        parse_params(raw)
    assert "finetune.learning_rate: Field required" in str(error.value)


def test_an_unknown_task_names_the_registered_ones():
    from transfer.tasks.registry import task_for

    raw = default_params()
    raw["task"] = "ner"
    with pytest.raises(ParamsError) as error:
        task_for(parse_params(raw))
    assert "task: unknown task `ner` (known: classification, qa, translation)" in str(error.value)
