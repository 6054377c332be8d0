from __future__ import annotations

import pytest
import yaml

from stages.errors import ParamsError
from stages.params import parse_params
from tests.conftest import ROOT


def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_shipped_params_are_valid():
    params = parse_params(default_params())
    assert params.finetune.strategy == "sequential"
    assert params.data.source.kind == "packaged"


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda p: p["finetune"].update(stratgy="x"), "finetune.stratgy: unknown key"),
    (lambda p: p["finetune"].update(strategy="magic"), "'target_only', 'source_only', 'sequential', 'joint' or 'dann'"),
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
