"""Model cards: the README.md a model folder carries parses as a Hugging Face card (metadata the hub reads),
and says what the metrics say, from the params and figures it is given."""

from __future__ import annotations

from huggingface_hub import ModelCard

from transfer.analysis.model_card import CardFacts, headline_facts, model_card
from transfer.core.artifacts import read_json
from transfer.core.params import LocalFiles, load_params
from transfer.tasks.registry import get_task


def facts(**changes) -> CardFacts:
    values = dict(title="Student distilled from the sequential model", role="A 3-layer student.",
                  strategy="distilled from sequential", scores={"macro_f1": 0.4512, "accuracy": 0.6031},
                  metric_names={"macro_f1": "macro-F1", "accuracy": "accuracy"}, test_examples=379,
                  gain={"points": 5.25, "ci95": [-1.5, 11.75], "significant": False, "over": "the baseline"},
                  training=["Distillation: temperature 2"], limits=["One training seed."])
    return CardFacts(**{**values, **changes})


def test_the_card_parses_as_a_hub_model_card_with_its_results_in_model_index():
    params = load_params()
    card = ModelCard(model_card(params, facts(), get_task("classification")))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.datasets == ["crowdflower_tweets", "drugscom_reviews"]
    assert card.data.pipeline_tag == "text-classification"
    results = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert results == {"macro-F1": 0.4512, "accuracy": 0.6031}
    assert {result.dataset_split for result in card.data.eval_results} == {"test"}
    assert "macro-F1 0.4512, accuracy 0.6031 on 379 examples" in card.text
    assert "+5.25 points (95% interval -1.50 to +11.75; not significant)" in card.text
    assert f"Labels: {', '.join(params.data.labels)}" in card.text


def test_a_local_model_names_no_base_model_and_the_same_facts_give_the_same_bytes():
    params = load_params()
    local = params.model_copy(update={"model": params.model.model_copy(update={"name": "/models/mine"})})
    text = model_card(local, facts(gain=None), get_task("classification"))
    assert "base_model" not in ModelCard(text).data.to_dict() and "Gain over" not in text
    assert "Base model: `/models/mine`" in text
    assert text == model_card(local, facts(gain=None), get_task("classification"))


def test_the_headline_cards_carry_the_seed_models_scores_and_the_gain_evaluate_computed():
    """evaluate's cards of models/target and models/baseline, from the committed default run's eval.json."""
    params, task = load_params(), get_task("classification")
    report = read_json("metrics/eval.json")
    target = ModelCard(model_card(params, headline_facts(report, "target", params, task, 200), task))
    baseline = ModelCard(model_card(params, headline_facts(report, "baseline", params, task, 200), task))
    for arm, card in (("target", target), ("baseline", baseline)):
        scores = {r.metric_name: r.metric_value for r in card.data.eval_results}
        assert scores == {"macro-F1": round(report[arm]["seeds"]["42"]["macro_f1"], 4),
                          "accuracy": round(report[arm]["seeds"]["42"]["accuracy"], 4)}
        assert f"macro-F1 over its 3 training seeds (42, 43, 44): {report[arm]['macro_f1']:.4f} ± " in card.text
        assert f"scores macro-F1 {report['trivial_baseline']['macro_f1']:.4f}" in card.text
        assert "200 labeled target training examples" in card.text
    low, high = report["gain_ci95_points"]
    assert (f"{report['gain_macro_f1_points']:+.2f} points (95% interval {low:+.2f} to {high:+.2f}; significant)"
            in target.text)
    assert "Gain over" not in baseline.text and f"{report['gain_macro_f1_points']:+.2f} points of macro-F1 ahead" \
        in baseline.text
    assert target.data.model_name == f"{report['strategy']} (transferred) model"
    assert "strategy-target_only" in baseline.data.tags
    assert target.data.language == ["en"] and "Language: English (`drugscom_reviews`)" in target.text


def test_a_negative_transfer_card_says_to_prefer_the_baseline():
    params, task = load_params(), get_task("classification")
    report = read_json("metrics/eval.json") | {"negative_transfer": True, "gain_macro_f1_points": -6.0,
                                                "significant": True, "gain_ci95_points": [-9.0, -2.5]}
    text = model_card(params, headline_facts(report, "target", params, task, 200), task)
    assert "-6.00 points (95% interval -9.00 to -2.50; significant)" in text and "prefer models/baseline" in text


def test_a_target_of_the_users_files_names_no_language_and_says_so():
    params = load_params()
    data = params.data.model_copy(update={"target": LocalFiles(kind="files", path="data/mine.csv")})
    text = model_card(params.model_copy(update={"data": data}), facts(), get_task("classification"))
    assert "language" not in ModelCard(text).data.to_dict()
    assert "Language: that of `data/mine.csv`'s texts" in text
