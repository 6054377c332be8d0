"""Model cards: the README.md a model folder carries parses as a Hugging Face card (metadata the hub reads),
and says what the metrics say, from the params and figures it is given."""

from __future__ import annotations

from huggingface_hub import ModelCard

from transfer.analysis.model_card import CardFacts, model_card
from transfer.core.params import load_params
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
