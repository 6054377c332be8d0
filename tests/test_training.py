"""Training-stage pieces on the tiny model: exact masked-only MLM loss, the pooler kept through TAPT,
classifier training that learns, and predictions that stay attached to their examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import synthetic_rows, tiny_params
from transfer.core.params import parse_params
from transfer.tasks.classification import load_classifier, predict, tokenize_rows
from transfer.tasks.registry import get_task
from transfer.training.checkpoints import ResumableRun
from transfer.training.pretraining import MaskedPositionsMLM, load_masked_lm
from transfer.training.trainer import train_phase

LABELS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def params(tiny_model):
    raw = tiny_params(tiny_model, {})
    return parse_params(raw)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_masked_positions_mlm_gives_the_full_models_loss(tiny_model, params, tokenizer):
    from transformers import DataCollatorForLanguageModeling

    mlm = load_masked_lm(str(tiny_model), params).eval()
    texts = [r["text"] for r in synthetic_rows("target", 8, 0)]
    batch = DataCollatorForLanguageModeling(tokenizer, seed=0)([tokenizer(t) for t in texts])
    with torch.no_grad():
        full = mlm(**batch).loss
        fast = MaskedPositionsMLM(mlm)(**batch)["loss"]
    assert torch.allclose(full, fast, atol=1e-5)


def test_domain_model_keeps_the_base_pooler(tiny_model, params, tmp_path):
    from transformers import AutoModel, AutoModelForSequenceClassification

    load_masked_lm(str(tiny_model), params).save_pretrained(tmp_path)
    base = AutoModel.from_pretrained(tiny_model)
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert torch.equal(classifier.bert.pooler.dense.weight, base.pooler.dense.weight)


def test_classifier_training_lowers_the_loss(tiny_model, params, tokenizer, tmp_path):

    train = tokenize_rows(synthetic_rows("target", 60, 0), tokenizer, LABELS, 32)
    model = load_classifier(str(tiny_model), params)
    run = ResumableRun("models/test", {}, root=tmp_path)
    trainer = train_phase(model, tokenizer, train, None, task=get_task("classification"), params=params, epochs=12,
                          learning_rate=3e-3, run=run, phase="train")
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses[-1] < losses[0] - 0.3


def test_predictions_stay_attached_to_their_examples(tiny_model, params, tokenizer, tmp_path):
    """Length-sorted inference must give each example the prediction it gets in any other order."""

    load_classifier(str(tiny_model), params).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    rows = synthetic_rows("target", 30, 5)
    for i, r in enumerate(rows):
        r["text"] += " extra words" * (i % 7)  # varied lengths, so sorting reorders
    test = tokenize_rows(rows, tokenizer, LABELS, 64)
    by_id = {}
    for order in (test, test.sort("length"), test.shuffle(seed=1)):
        labels, predictions, _ = predict(tmp_path, order, params)
        assert np.array_equal(labels, np.asarray(order["label"]))
        for example_id, p in zip(order["id"], predictions, strict=True):
            assert by_id.setdefault(example_id, p) == p


def test_length_sorted_batches_cover_every_example_once_with_little_padding():
    from transfer.training.trainer import LengthSortedBatches

    lengths = [int(x) for x in torch.randint(5, 300, (203,), generator=torch.Generator().manual_seed(0))]
    sampler = LengthSortedBatches(lengths, batch_size=16)
    torch.manual_seed(1)
    first = list(sampler)
    assert sorted(first) == list(range(203))
    batches = [first[i:i + 16] for i in range(0, 203, 16)]
    assert len(batches[-1]) == 203 % 16  # the short batch last: Trainer's 16-slices stay batches
    padding = sum(16 * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches[:-1])
    assert padding / sum(lengths[i] for b in batches[:-1] for i in b) < 0.1  # ~0.5 for random batches
    second = list(sampler)
    assert second != first and sorted(second) == list(range(203))  # batch order reshuffled each epoch
    torch.manual_seed(1)
    assert list(sampler) == first  # from torch's RNG, which Trainer seeds and checkpoints


def test_evaluation_batches_are_length_sorted_and_the_metrics_are_those_of_any_order(tiny_model, params, tokenizer,
                                                                                        tmp_path):
    """The per-epoch evaluation goes through LengthSortedTrainer's longest-first order, not Trainer's random
    length groups: every example once, batches of decreasing length, and the same metrics as in dataset order."""
    from transformers import Trainer

    from transfer.core.modeling import training_arguments
    from transfer.training.trainer import LengthSortedTrainer

    # More than Trainer's mega-batch (50 batches of 8), within which its own sampler sorts too.
    rows = synthetic_rows("target", 480, 5)
    for i, row in enumerate(rows):  # lengths that vary a lot
        row["text"] = " ".join([row["text"]] * (1 + i % 4))
    validation = tokenize_rows(rows, tokenizer, LABELS, 64)
    model = load_classifier(str(tiny_model), params).eval()
    task = get_task("classification")

    def evaluation(trainer_class):
        args = training_arguments(tmp_path / trainer_class.__name__, seed=0, epochs=1, learning_rate=1e-4,
                                  batch_size=8, eval_each_epoch=True)
        return trainer_class(model=model, args=args, eval_dataset=validation, processing_class=tokenizer,
                             data_collator=task.collator(tokenizer, model),
                             compute_metrics=task.trainer_metrics(validation, tokenizer, params))

    sorted_trainer = evaluation(LengthSortedTrainer)
    batches = [batch["input_ids"] for batch in sorted_trainer.get_eval_dataloader()]
    assert sum(len(b) for b in batches) == 480
    widths = [b.shape[1] for b in batches]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
    plain = evaluation(Trainer).evaluate()
    ours = sorted_trainer.evaluate()
    assert ours["eval_macro_f1"] == plain["eval_macro_f1"]
    assert abs(ours["eval_loss"] - plain["eval_loss"]) < 1e-5
