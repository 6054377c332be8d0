"""The transfer suite's bookkeeping (bench/transfer.py): the tables docs/transfer-bench.md quotes are built
from per-seed runs by summarize / combined_runs / markdown, so a slip there misreports every lever."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "transfer.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("transfer_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(pair: str, seed: int, **scores: tuple[float, float, bool]) -> dict:
    """One pair x seed as run_pair returns it: method -> (score, gain in points, significant)."""
    methods = {"target_only": {"accuracy": 0.80}}
    methods |= {m: {"accuracy": s, "gain_points": g, "significant": sig} for m, (s, g, sig) in scores.items()}
    return {"pair": pair, "seed": seed, "primary": "accuracy", "sizes": {}, "tapt_loss_reduction": 0.1,
            "methods": methods}


def test_summarize_means_and_stds_over_seeds(bench):
    summary = bench.summarize([run("a-to-b", 1, sequential=(0.84, 4.0, True)),
                               run("a-to-b", 2, sequential=(0.82, 2.0, False))])
    cell = summary["pairs"]["a-to-b"]["methods"]["sequential"]
    assert cell["mean"] == pytest.approx(0.83)
    assert cell["std"] == pytest.approx(0.01)
    assert cell["mean_gain_points"] == pytest.approx(3.0)
    assert cell["significant"] == [True, False]
    assert summary["pairs"]["a-to-b"]["seeds"] == [1, 2]
    assert summary["average"]["target_only"] == pytest.approx(0.80)


def test_combined_runs_unite_the_methods_of_one_pair_and_seed(bench, tmp_path):
    """A later file that ran another lever on the same pair and seed adds it; a method both ran keeps the
    first file's result; a pair and seed only one file ran is kept as it is."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"runs": [run("a-to-b", 1, sequential=(0.84, 4.0, True))]}))
    second.write_text(json.dumps({"runs": [run("a-to-b", 1, sequential=(0.10, -70.0, True),
                                               replay=(0.86, 6.0, True)),
                                           run("a-to-b", 2, replay=(0.85, 5.0, True))]}))
    runs = bench.combined_runs([first, second])
    by_seed = {r["seed"]: r["methods"] for r in runs}
    assert sorted(by_seed) == [1, 2]
    assert by_seed[1]["sequential"]["accuracy"] == 0.84
    assert by_seed[1]["replay"]["accuracy"] == 0.86
    assert set(by_seed[2]) == {"target_only", "replay"}


def test_markdown_flags_cells_with_fewer_seeds_and_methods_on_fewer_pairs(bench):
    runs = [run("a-to-b", 1, sequential=(0.84, 4.0, True), replay=(0.86, 6.0, True)),
            run("a-to-b", 2, sequential=(0.82, 2.0, False)),
            run("c-to-d", 1, sequential=(0.70, -10.0, True))]
    table = bench.markdown(bench.summarize(runs), wall_seconds=600)
    rows = {line.split(" |")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("|")}
    assert "83.0 ± 1.0 (+3.0*)" in rows["a-to-b (accuracy, 2)"]
    assert "86.0 ± 0.0 [1 seed] (+6.0*)" in rows["a-to-b (accuracy, 2)"]
    assert "86.0 [1 pair]" in rows["**average**"]
    # the mean gain is over pairs, each pair's gain over its own seeds: (3.0 + -10.0) / 2
    assert "-3.5" in rows["**mean gain over target_only**"]
    assert table.rstrip().endswith("Wall time: 10.0 min.")


@pytest.mark.dag  # under a minute, but long enough to be handed out first
def test_smoke_run_of_one_pair_writes_its_table(tmp_path):
    """`--smoke` takes every code path of a pair (TAPT, source phase, target phases, a lever) on tiny
    budgets with the packaged model and corpora (~45 s): it guards the harness, its figures mean nothing."""
    import subprocess
    import sys

    out = tmp_path / "smoke.json"
    subprocess.run([sys.executable, str(BENCH), "--smoke", "--pairs", "tweets-to-drugs", "--seeds", "1",
                    "--methods", "replay", "joint", "--no-setfit", "--out", str(out)], cwd=BENCH.parents[1],
                   check=True)
    result = json.loads(out.read_text())
    (entry,) = result["runs"]
    assert (entry["pair"], entry["seed"], entry["primary"]) == ("tweets-to-drugs", 1, "macro_f1")
    assert set(entry["methods"]) == {"target_only", "source_only", "sequential", "replay", "joint"}
    for method, scores in entry["methods"].items():
        assert 0.0 <= scores["macro_f1"] <= 1.0, method
    # Both arms of the gain are selected as the pipeline selects them: a phase per value of the grid, the
    # logit-adjustment strength and the learning rate chosen on target validation.
    import yaml

    finetune = yaml.safe_load((BENCH.parents[1] / "params.yaml").read_text())["finetune"]
    grid = {f"{rate:g}" for rate in finetune["learning_rate"]}
    for arm in ("target_only", "sequential"):
        chosen = entry["methods"][arm]
        assert set(chosen["validation_macro_f1"]) == grid and f"{chosen['learning_rate']:g}" in grid, arm
        assert chosen["logit_adjustment"] in finetune["logit_adjustment"]
        assert isinstance(chosen["predicts_one_class"], bool)
    assert "| tweets-to-drugs (macro_f1, 1) |" in out.with_suffix(".md").read_text()
    # joint has no bespoke code in the bench: the registry's strategy, trained by the pipeline's fit_strategy
    # over the same grid, with the levers the pipeline gives it
    joint = entry["methods"]["joint"]
    assert f"{joint['learning_rate']:g}" in grid and set(map(float, joint["learning_rate_grid"])) == set(
        finetune["learning_rate"])
    assert joint["logit_adjustment"] in finetune["logit_adjustment"]


def test_the_bench_offers_every_registered_strategy_it_has_no_code_of_its_own_for(bench):
    from transfer.core.strategy_registry import STRATEGIES, Strategy, register_strategy

    assert {"joint", "dann"} <= set(bench.registered_strategies())
    assert not set(bench.registered_strategies()) & {*bench.CORE, *bench.BESPOKE}
    register_strategy(Strategy("plugin_strategy", "a strategy a plugin registers", train=lambda *a, **k: {}))
    try:
        assert "plugin_strategy" in bench.registered_strategies()
    finally:
        del STRATEGIES["plugin_strategy"]


def test_a_significant_gain_that_flips_sign_in_another_seed_run_fails_the_rerun_check():
    spec = importlib.util.spec_from_file_location("seed_reruns", BENCH.parent / "seed_reruns.py")
    reruns = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reruns)
    runs = {"42": {"gain_points": 5.0, "significant": True}, "43": {"gain_points": 2.0, "significant": None}}
    assert reruns.sign_check(runs) == {"claims": 1, "keep_their_sign": True, "failures": []}
    runs["44"] = {"gain_points": -1.0, "significant": False}
    check = reruns.sign_check(runs)
    assert not check["keep_their_sign"] and check["failures"] == ["seed 44: -1.00 against seed 42's significant +5.00"]
