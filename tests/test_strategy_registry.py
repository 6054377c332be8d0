"""A strategy plugs in through the registry alone: one defined here (a short warm-up phase on the target
labels at a tenth of the learning rate, then the target phase) is accepted by the params schema, runs through
the real tokenize and finetune_target stages on the tiny model, and ships under its name, with no edit to the
package."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml

from tests.conftest import synthetic_rows, tiny_params, write_corpora
from transfer.core.errors import ParamsError
from transfer.core.params import parse_params
from transfer.core.strategy_registry import STRATEGIES, Strategy, register_strategy
from transfer.tasks.registry import get_task, task_for


@pytest.fixture
def warmup_strategy():
    from examples.warmup_target import warm_then_target  # the documented plugin's training (importing registers it)

    strategy = register_strategy(Strategy("warmup_target", "a gentle warm-up phase, then the target phase",
                                          train=warm_then_target))
    yield strategy
    del STRATEGIES[strategy.name]
    STRATEGIES.pop("warmup_target", None)  # registered by importing the example


@pytest.fixture
def head_strategy():
    from examples.warmup_target import warm_then_target

    strategy = register_strategy(Strategy("needs_head", "a strategy with a domain head", label_head=True,
                                          train=warm_then_target))
    yield strategy
    del STRATEGIES[strategy.name]
    STRATEGIES.pop("warmup_target", None)  # registered by importing the example


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_a_strategy_defined_outside_the_package_runs_through_finetune_target(warmup_strategy, tiny_model, tmp_path,
                                                                             monkeypatch):
    from stages import finetune_target, tokenize

    raw = tiny_params(tiny_model, write_corpora(tmp_path / "corpora"))
    raw["finetune"].update(strategy="warmup_target", learning_rate=[3e-3], seed_offsets=[], target_epochs=6)
    raw["compare"]["strategies"] = ["warmup_target", "sequential"]  # a compare entry too
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    for domain, seed in (("source", 1), ("target", 2)):
        for split, n in (("train", 60), ("validation", 20), ("test", 20)):
            write_rows(tmp_path / "data/augmented" / domain / f"{split}.jsonl", synthetic_rows(domain, n, seed + n))
    shutil.copytree(tiny_model, tmp_path / "models/domain")  # what pretrain_domain would have written
    tokenize.main()
    monkeypatch.setattr(sys, "argv", ["finetune_target"])
    finetune_target.main()

    trained = tmp_path / "models/trained/target"
    assert json.loads((trained / "training.json").read_text())["strategy"] == "warmup_target"
    assert json.loads((trained / "config.json").read_text())["transfer_strategy"] == "warmup_target"
    tuning = json.loads((trained / "tuning.json").read_text())
    assert not tuning["predicts_one_class"]  # it trained: the warm-up and target phases ran on the labels
    curves = (tmp_path / "metrics/curves/target.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in curves[1:]} == {"warmup", "target"}  # its two phases, in its curves


def test_the_registry_decides_which_names_params_accept_and_which_tasks_run_them(head_strategy, tiny_model, tmp_path):
    raw = tiny_params(tiny_model, write_corpora(tmp_path))
    raw["finetune"]["strategy"] = "needs_head"
    assert parse_params(raw).finetune.strategy == "needs_head"
    assert "needs_head" in get_task("classification").strategies
    assert "needs_head" not in get_task("qa").strategies and "sequential" in get_task("qa").strategies
    qa = {**raw, "task": "qa", "data": {**raw["data"], "labels": []}}
    with pytest.raises(ParamsError, match="needs_head need a label head"):
        task_for(parse_params(qa))
    raw["finetune"]["strategy"] = "not_registered"
    with pytest.raises(ParamsError, match="unknown strategy `not_registered`; choose one of .*needs_head or auto"):
        parse_params(raw)


def test_auto_chooses_among_strategies_and_is_none_itself():
    """finetune.strategy: auto reaches the code that asks which strategies start with the source phase; it is
    not registered (its candidates are), and an unregistered name is an error, not a silent no."""
    from transfer.training.source_phase import starts_with_source_phase

    assert starts_with_source_phase("sequential") and starts_with_source_phase("source_only")
    assert not starts_with_source_phase("auto") and not starts_with_source_phase("target_only")
    with pytest.raises(KeyError, match="unknown strategy `nope`"):
        starts_with_source_phase("nope")



def test_params_plugins_register_a_strategy_from_a_file_in_the_project(tiny_model, tmp_path):
    """`plugins: [module]` is imported before validation, from the project's folder: the strategy it registers
    is a valid finetune.strategy with no sitecustomize and no edit to the package; a module that does not
    import is a params error that names it."""
    from transfer.core.params import load_params

    (tmp_path / "my_plugins").mkdir()
    (tmp_path / "my_plugins" / "from_a_plugin.py").write_text(
        "from transfer.core.strategy_registry import Strategy, register_strategy\n\n"
        "register_strategy(Strategy('from_a_plugin', 'registered by a module params.yaml names'))\n")
    raw = tiny_params(tiny_model, write_corpora(tmp_path / "corpora"))
    raw["finetune"]["strategy"] = "from_a_plugin"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    try:
        with pytest.raises(ParamsError, match="unknown strategy `from_a_plugin`"):
            load_params(tmp_path / "params.yaml")
        raw["plugins"] = ["my_plugins.from_a_plugin"]
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        params = load_params(tmp_path / "params.yaml")
        assert params.finetune.strategy == "from_a_plugin" and params.plugins == ["my_plugins.from_a_plugin"]
        raw["plugins"] = ["my_plugins.not_there"]
        with pytest.raises(ParamsError, match=r"plugins: cannot import `my_plugins.not_there` \(ModuleNotFoundError"):
            parse_params(raw, root=tmp_path)
        with pytest.raises(ParamsError, match="plugins: expected a list of module names"):
            parse_params({**raw, "plugins": "my_plugins.from_a_plugin"})
    finally:
        STRATEGIES.pop("from_a_plugin", None)
        for name in [m for m in sys.modules if m.startswith("my_plugins")]:
            del sys.modules[name]
        if str(tmp_path.resolve()) in sys.path:
            sys.path.remove(str(tmp_path.resolve()))
