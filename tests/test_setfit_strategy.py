"""finetune.strategy: setfit | sequential_setfit on the tiny model: the folded classifier gives SetFit's own
probabilities, survives save and load, and feeds distillation and the encoder readers like any classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_selection import tiny_setting

SETFIT = {"iterations": 2, "epochs": 1, "batch_size": 8, "body_learning_rate": 1e-3, "source_examples": 12}


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """sequential_setfit fitted on the tiny model, and what the test needs to check it."""
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.strategies import fit_strategy

    params, source, target = tiny_setting(tiny_model, strategy="sequential_setfit", setfit=SETFIT)
    scratch = tmp_path_factory.mktemp("setfit")
    model, tokenizer, phases = fit_strategy(params, get_task("classification"), "sequential_setfit", str(tiny_model),
                                            source, target, ResumableRun("s", {}, root=scratch / "ckpt"))
    return params, source, target, model, tokenizer, phases, scratch


def test_the_folded_classifier_predicts_what_setfit_predicts(tiny_model):
    from setfit import SetFitModel
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoTokenizer

    from transfer.tasks.classification import class_probabilities, tokenize_rows
    from transfer.training.setfit_training import sentence_body, texts_of, to_classifier

    params, _, target = tiny_setting(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    texts = texts_of(target["train"], tokenizer)
    for labels in (["negative", "neutral", "positive"], ["negative", "positive"]):  # softmax and sigmoid heads
        ids = [i % len(labels) for i in range(len(texts))]
        setfit = SetFitModel(model_body=sentence_body(str(tiny_model), str(tiny_model), 32, params),
                             model_head=LogisticRegression())
        setfit.fit(texts, ids, num_epochs=1, show_progress_bar=False)  # the head alone: a logistic regression
        folded = to_classifier(setfit, labels)
        dataset = tokenize_rows([{"id": str(i), "text": t, "label": labels[y]} for i, (t, y) in
                                 enumerate(zip(texts, ids, strict=True))], tokenizer, labels, 32)
        ours = class_probabilities(folded, dataset, tokenizer, 8)
        theirs = np.asarray(setfit.predict_proba(texts, as_numpy=True))
        assert np.abs(ours - theirs).max() < 1e-4


def test_a_class_the_head_never_saw_gets_probability_zero():
    from sklearn.linear_model import LogisticRegression

    from transfer.training.setfit_training import head_weights

    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    head = LogisticRegression().fit(x, [0, 2, 0, 2])  # class 1 absent from the labeled set
    weight, bias = head_weights(head, 3)
    logits = x @ weight.T + bias
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    assert np.allclose(probabilities[:, [0, 2]], head.predict_proba(x)) and probabilities[:, 1].max() < 1e-12


def test_sequential_setfit_trains_on_source_pairs_then_the_target_and_reloads(trained):
    from transformers import AutoModel

    from transfer.tasks.classification import class_probabilities, load_classifier
    from transfer.tasks.sentence_classifier import is_sentence_classifier, sentence_embedding_classifier

    params, _, target, model, tokenizer, phases, scratch = trained
    assert isinstance(model, sentence_embedding_classifier()) and is_sentence_classifier(model.config)
    assert phases == {}
    assert model.config.transfer_strategy == "sequential_setfit"
    assert model.config.transfer_levers["setfit"] == {"source_examples": 12, "target_examples": 24}
    probabilities = class_probabilities(model, target["validation"], tokenizer, 8)
    accuracy = float((probabilities.argmax(1) == np.asarray(target["validation"]["label"])).mean())
    assert accuracy > 0.5, accuracy  # 3 classes told apart by their sentiment words
    model.save_pretrained(scratch / "out")
    tokenizer.save_pretrained(scratch / "out")
    again = load_classifier(str(scratch / "out"), params)
    assert type(again) is type(model)
    assert np.allclose(class_probabilities(again, target["validation"], tokenizer, 8), probabilities, atol=1e-6)
    encoder = AutoModel.from_pretrained(scratch / "out")  # domain shift reads the trained encoder this way
    assert torch.equal(encoder.embeddings.word_embeddings.weight, again.bert.embeddings.word_embeddings.weight)


def test_a_setfit_teacher_gets_a_student_of_its_own_kind(trained):
    from transfer.training.distillation import make_student

    model = trained[3]
    student = make_student(model, keep_every=2)
    assert type(student) is type(model) and student.config.num_hidden_layers == 1
    assert torch.equal(student.classifier.weight, model.classifier.weight)
    layer = "encoder.layer.0.output.dense.weight"
    assert torch.equal(student.bert.state_dict()[layer], model.bert.state_dict()[layer])


def test_levers_without_a_gradient_target_phase_are_recorded_as_skipped(tiny_model, tmp_path):
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.strategies import fit_strategy

    params, source, target = tiny_setting(tiny_model, strategy="setfit", setfit=SETFIT,
                                          keep_source={"l2sp": 0.0, "replay": 1.0})
    model = fit_strategy(params, get_task("classification"), "setfit", str(tiny_model), source, target,
                         ResumableRun("s", {}, root=tmp_path))[0]
    levers = model.config.transfer_levers
    assert levers["setfit"] == {"target_examples": 24}
    assert "skipped" in levers["keep_source"]


def test_params_refuse_setfit_with_lora(tiny_model):
    from tests.conftest import tiny_params
    from transfer.core.errors import ParamsError
    from transfer.core.params import parse_params

    raw = tiny_params(tiny_model, {})
    raw["finetune"].update(strategy="setfit", peft="lora")
    with pytest.raises(ParamsError, match="setfit.*finetune.peft: none"):
        parse_params(raw)
