"""Transfer strategies on the tiny model: each one trains, lowers its loss, and saves a model that loads."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import synthetic_rows, tiny_params
from transfer.training.strategies import DomainAdversarialModel, GradientReversal, dann_lambda

LABELS = ["negative", "neutral", "positive"]


def test_gradient_reversal_flips_the_sign_reaching_the_encoder(tiny_model):
    """The domain loss's gradient on the encoder is exactly the negative of the unreversed one."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3).eval()
    model = DomainAdversarialModel(classifier).eval()
    batch = {"input_ids": torch.tensor([[101, 2023, 2001, 2307, 102], [101, 6659, 3255, 1012, 102]]),
             "labels": torch.tensor([-100, -100]), "domain": torch.tensor([0, 1])}

    def encoder_grad(strength: float) -> torch.Tensor:
        model.zero_grad()
        model.reversal_strength = strength
        model(**batch)["loss"].backward()
        return classifier.bert.encoder.layer[0].attention.self.query.weight.grad.clone()

    plain, reversed_ = encoder_grad(-1.0), encoder_grad(1.0)  # -1: no reversal (identity gradient)
    assert plain.abs().sum() > 0
    assert torch.allclose(reversed_, -plain, atol=1e-6)
    head_grads = [p.grad for p in model.domain_head.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in head_grads)  # the domain head itself is not reversed


def test_reversal_layer_and_schedule():
    x = torch.ones(3, requires_grad=True)
    GradientReversal.apply(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))
    assert dann_lambda(0.0) == 0.0 and 0.99 < dann_lambda(1.0) < 1.0
    assert dann_lambda(0.2) < dann_lambda(0.5)


@pytest.mark.parametrize(("strategy", "peft"), [("source_only", "none"), ("joint", "none"), ("dann", "none"),
                                                  ("target_only", "lora")])
def test_each_strategy_trains_and_saves_a_loadable_model(strategy, peft, tiny_model, tmp_path, monkeypatch):
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from transfer.core.params import parse_params
    from transfer.tasks.classification import tokenize_rows
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.strategies import train_strategy

    raw = tiny_params(tiny_model, {})
    raw["finetune"].update(strategy=strategy, peft=peft, target_epochs=16, source_epochs=8, learning_rate=3e-3,
                           source_learning_rate=3e-3, select_best=False)
    # LoRA trains far fewer weights of a random tiny encoder: give it more steps and a larger rate.
    raw["finetune"]["lora"] = {"r": 8, "alpha": 32, "dropout": 0.0, "target_modules": ["query", "value"]}
    if peft == "lora":
        raw["finetune"].update(target_epochs=40, learning_rate=1e-2)
    # Synthetic domains are separable by their first word: at full strength the reversed domain gradient
    # keeps a 2-layer, 32-wide encoder from learning anything at all in 100 steps.
    raw["finetune"]["dann"] = {"gamma": 1.0, "domain_weight": 0.1}
    params = parse_params(raw)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    monkeypatch.chdir(tmp_path)

    def split(domain: str, n: int, seed: int, labeled: bool = True) -> datasets.Dataset:
        rows = synthetic_rows(domain, n, seed)
        if not labeled:
            rows = [{**r, "label": None} for r in rows]
        return tokenize_rows(rows, tokenizer, LABELS, 32)

    datasets.DatasetDict({"train": split("source", 60, 1)}).save_to_disk("data/tokenized/source")
    datasets.DatasetDict({"train": split("target", 30, 2), "validation": split("target", 12, 3),
                          "unlabeled": split("target", 20, 4, labeled=False)}).save_to_disk("data/tokenized/target")

    train_strategy(params, get_task("classification"), strategy, str(tiny_model),
                   datasets.load_from_disk("data/tokenized/source"), datasets.load_from_disk("data/tokenized/target"),
                   tmp_path / "model", tmp_path / "curves.csv",
                   ResumableRun("models/target", {}, root=tmp_path / "checkpoints"))

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    assert model.config.transfer_strategy == strategy
    assert model.config.id2label == dict(enumerate(LABELS))
    assert not any("lora" in name for name, _ in model.named_parameters())  # adapters merged
    # It learned the labels it was given: cross-entropy on its training texts well below chance (ln 3 = 1.10).
    train = datasets.load_from_disk(f"data/tokenized/{'source' if strategy == 'source_only' else 'target'}")["train"]
    batch = tokenizer([r["text"] for r in synthetic_rows(*(("source", 60, 1) if strategy == "source_only"
                                                            else ("target", 30, 2)))], padding=True,
                      return_tensors="pt")
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model.eval()(**batch).logits, torch.tensor(train["label"]))
    assert loss < 0.9, float(loss)


def test_student_keeps_every_other_teacher_layer():
    from transformers import BertConfig, BertForSequenceClassification

    from transfer.training.distillation import make_student

    torch.manual_seed(0)
    teacher = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=4,
                                                       num_attention_heads=2, intermediate_size=32, num_labels=3))
    student = make_student(teacher, keep_every=2)
    assert student.config.num_hidden_layers == 2 and student.num_parameters() < teacher.num_parameters()
    for new, old in ((0, 0), (1, 2)):  # layers 0 and 2 of the teacher become the student's 0 and 1
        assert torch.equal(student.bert.encoder.layer[new].output.dense.weight,
                           teacher.bert.encoder.layer[old].output.dense.weight)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)


def test_distillation_loss_terms():
    from transfer.training.distillation import distillation_loss

    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.2, 0.1]])
    labels = torch.tensor([0, -100])  # the second row is unlabeled: teacher term only
    assert distillation_loss(teacher.clone(), teacher, labels, temperature=2.0, alpha=1.0).abs() < 1e-6
    hard = torch.nn.functional.cross_entropy(teacher[:1], labels[:1])
    assert torch.allclose(distillation_loss(teacher.clone(), teacher, labels, 2.0, 0.0), hard)
    student = torch.zeros(2, 3)
    soft_t1 = distillation_loss(student, teacher, labels, 1.0, 1.0)
    soft_t4 = distillation_loss(student, teacher, labels, 4.0, 1.0)
    assert soft_t1 > 0 and soft_t4 > 0  # T^2 keeps the soft term's scale comparable across temperatures


def test_sequential_from_the_trained_source_phase_is_the_model_trained_in_one_go(tiny_model, tmp_path):
    """finetune_source's model, then the target phase (finetune_target), publishes the very weights and
    curves of sequential trained in one process: moving the source phase to its own stage changes what is
    cached, not what is trained. Another seed does not match the source model and trains its own."""
    import datasets
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from transfer.core.params import parse_params
    from transfer.tasks.classification import tokenize_rows
    from transfer.tasks.registry import get_task
    from transfer.training.checkpoints import ResumableRun
    from transfer.training.source_phase import settings_difference, usable_source_model
    from transfer.training.strategies import train_source_model, train_strategy

    raw = tiny_params(tiny_model, {})
    raw["finetune"].update(strategy="sequential", target_epochs=2, source_epochs=1, learning_rate=3e-3)
    params, task = parse_params(raw), get_task("classification")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    source = datasets.DatasetDict({"train": tokenize_rows(synthetic_rows("source", 40, 1), tokenizer, LABELS, 32)})
    target = datasets.DatasetDict({split: tokenize_rows(synthetic_rows("target", n, seed), tokenizer, LABELS, 32)
                                   for split, n, seed in (("train", 20, 2), ("validation", 10, 3))})
    target["unlabeled"] = target["train"].select([])

    def run(name: str) -> ResumableRun:
        return ResumableRun(name, {}, root=tmp_path / "checkpoints")

    train_strategy(params, task, "sequential", str(tiny_model), source, target, tmp_path / "one_go",
                   tmp_path / "one_go.csv", run("one_go"))
    train_source_model(params, task, str(tiny_model), source, tmp_path / "source", run("source"))
    assert usable_source_model(tmp_path / "source", params) == str(tmp_path / "source")
    assert "_runtime" not in (tmp_path / "source" / "source_trainer_state.json").read_text()  # same bytes each run
    train_strategy(params, task, "sequential", str(tiny_model), source, target, tmp_path / "two_stages",
                   tmp_path / "two_stages.csv", run("two_stages"), source_model=str(tmp_path / "source"))

    one_go, two_stages = (load_file(tmp_path / name / "model.safetensors") for name in ("one_go", "two_stages"))
    assert one_go.keys() == two_stages.keys() and all(torch.equal(one_go[k], two_stages[k]) for k in one_go)
    assert (tmp_path / "one_go.csv").read_text() == (tmp_path / "two_stages.csv").read_text()
    phases = {line.split(",")[0] for line in (tmp_path / "two_stages.csv").read_text().splitlines()[1:]}
    assert phases == {"source", "target"}  # the curves run on from the source phase's log
    other_seed = params.model_copy(update={"seed": params.seed + 1})
    assert usable_source_model(tmp_path / "source", other_seed) is None
    assert settings_difference(tmp_path / "source", other_seed) == ["seed"]
