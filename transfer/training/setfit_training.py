"""SetFit (Tunstall et al. 2022): contrastive fine-tuning of a sentence-transformer on pairs of labeled
examples, then a logistic-regression head on its embeddings. The few-shot peer a user with 100 labels would
try first; the bench runs it as that peer, and finetune runs it as two strategies:

- `setfit`: pairs of labeled target examples, then the head on them (the source is ignored);
- `sequential_setfit`: pairs of source examples first (`finetune.setfit.source_examples` of them), then
  pairs of target examples, then the head on the target labels: the source shapes the embedding space.

The trained model is folded into a `SentenceEmbeddingClassifier` (same probabilities, a plain `forward`),
so every later stage reads it like any other classifier.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch

from transfer.core.errors import ModelError
from transfer.core.modeling import load_kwargs, set_seed
from transfer.tasks.sentence_classifier import HEAD, POOLING_MODES, sentence_classifier_class
from transfer.training.label_subsets import budget_subset

if TYPE_CHECKING:
    import datasets

    from transfer.core.params import Params

NEVER = -1e4  # the bias of a class the head never saw: its probability is 0 to float precision


def train_setfit(model_path: str, texts: list[str], label_ids: list[int], *, seed: int, iterations: int,
                 epochs: int, batch_size: int, max_length: int):
    """A SetFitModel trained on (text, class id) pairs; `iterations` positive/negative pairs per example."""
    import datasets  # heavy / optional: only SetFit runs need setfit and sentence-transformers
    from setfit import SetFitModel, Trainer, TrainingArguments

    if len(set(label_ids)) < 2:
        raise ValueError("SetFit needs labeled examples of at least two classes")
    model = SetFitModel.from_pretrained(model_path)
    args = TrainingArguments(batch_size=batch_size, num_iterations=iterations, num_epochs=epochs, seed=seed,
                             max_length=max_length, report_to="none")
    train = datasets.Dataset.from_dict({"text": list(texts), "label": [int(i) for i in label_ids]})
    Trainer(model=model, args=args, train_dataset=train).train()
    return model


def setfit_probabilities(model, texts: list[str], n_classes: int, batch_size: int = 64) -> np.ndarray:
    """Class probabilities with one column per class id (a class the head never saw gets 0)."""
    probabilities = np.asarray(model.predict_proba(list(texts), batch_size=batch_size, as_numpy=True))
    columns = np.zeros((len(texts), n_classes), dtype=np.float32)
    columns[:, [int(c) for c in model.model_head.classes_]] = probabilities
    return columns


def sentence_body(init: str, base: str, max_length: int, params: Params):
    """A SentenceTransformer with `init`'s encoder and `base`'s pooling and normalization.

    A pretrain_domain folder holds the encoder alone (no modules.json), and sentence-transformers would
    pool it by mean without normalizing; the embedding space the base model was trained into is the one
    SetFit should start from, so the modules after the encoder come from `base`.
    """
    from sentence_transformers import SentenceTransformer  # optional: only the setfit strategies need it
    from sentence_transformers.sentence_transformer.modules import Transformer

    reference = SentenceTransformer(base, device="cpu")
    remote_code = {"trust_remote_code": params.model.trust_remote_code}
    encoder = Transformer(init, max_seq_length=max_length, model_kwargs=load_kwargs(params, init),
                          processor_kwargs=remote_code, config_kwargs=remote_code)
    body = SentenceTransformer(modules=[encoder, *list(reference)[1:]], device="cpu")
    pooling_of(body)  # refuse what a SentenceEmbeddingClassifier cannot compute, before training
    return body


def pooling_of(body) -> tuple[str, bool]:
    """(pooling mode, L2-normalized) of a sentence-transformer made of Transformer, Pooling, [Normalize]."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling  # optional, as above

    modules = list(body)
    kinds = [type(m).__name__ for m in modules]
    pooling = modules[1] if len(modules) > 1 and isinstance(modules[1], Pooling) else None
    mode = pooling.pooling_mode if pooling is not None else None
    normalize = len(modules) == 3 and isinstance(modules[2], Normalize)
    if pooling is None or mode not in POOLING_MODES or len(modules) > 2 + normalize:
        raise ModelError(f"finetune.strategy setfit: the sentence-transformer is {' -> '.join(kinds)} (pooling "
                         f"{mode}); the setfit strategies support Transformer -> Pooling (mean or cls) -> optional "
                         f"Normalize, as all-MiniLM-L6-v2 and most sentence-transformers are")
    return mode, normalize


def texts_of(dataset: datasets.Dataset, tokenizer) -> list[str]:
    """The texts of a tokenized split, decoded from its token ids.

    finetune_target reads data/tokenized, which keeps ids, not text; SetFit tokenizes text itself. Decoding
    the ids (already truncated to tokenize.max_length) gives the text as the model saw it (an uncased
    WordPiece vocabulary: lower case, spacing around punctuation normalized), which SetFit tokenizes again.
    """
    return [tokenizer.decode(list(ids), skip_special_tokens=True) for ids in dataset["input_ids"]]


def fit_setfit_strategy(params: Params, strategy: str, init: str, base: str, source: datasets.DatasetDict,
                        target: datasets.DatasetDict, tokenizer):
    """The SetFit model of `strategy` as a SentenceEmbeddingClassifier, and what it trained on."""
    from setfit import SetFitModel, Trainer, TrainingArguments  # optional: only the setfit strategies need it

    config = params.finetune.setfit
    set_seed(params.seed)
    head = {"class_weight": "balanced"} if params.augment.rebalance == "class_weights" else {}
    model = SetFitModel(model_body=sentence_body(init, base, params.tokenize.max_length, params),
                        model_head=_logistic_regression(head))
    args = TrainingArguments(batch_size=config.batch_size, num_iterations=config.iterations,
                             num_epochs=config.epochs, body_learning_rate=config.body_learning_rate,
                             seed=params.seed, report_to="none")  # texts are cut at the body's max_seq_length
    trainer = Trainer(model=model, args=args)
    report = {}
    if strategy == "sequential_setfit":
        pairs = budget_subset(source["train"], min(config.source_examples, len(source["train"])), params.seed)
        trainer.train_embeddings(texts_of(pairs, tokenizer), [int(y) for y in pairs["label"]])
        report["source_examples"] = len(pairs)
    texts, labels = texts_of(target["train"], tokenizer), [int(y) for y in target["train"]["label"]]
    if len(set(labels)) < 2:
        raise ModelError("finetune.strategy setfit: the labeled target train set has one class; SetFit pairs need "
                         "at least two")
    trainer.train_embeddings(texts, labels)
    trainer.train_classifier(texts, labels)
    report["target_examples"] = len(labels)
    return to_classifier(model, params.data.labels), report


def _logistic_regression(options: dict):
    from sklearn.linear_model import LogisticRegression  # heavy-ish, and only SetFit needs it

    return LogisticRegression(**options)


def head_weights(head, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted scikit-learn LogisticRegression as (weight, bias) of a linear layer over every class id:
    softmax of its output equals predict_proba (binary: [0, w·x + b] gives the sigmoid)."""
    classes = [int(c) for c in head.classes_]
    coef, intercept = np.asarray(head.coef_, dtype=np.float64), np.asarray(head.intercept_, dtype=np.float64)
    weight = np.zeros((n_labels, coef.shape[1]))
    bias = np.full(n_labels, NEVER)
    if len(classes) == 2 and coef.shape[0] == 1:
        bias[classes[0]], weight[classes[1]], bias[classes[1]] = 0.0, coef[0], intercept[0]
    else:
        weight[classes], bias[classes] = coef, intercept
    return weight, bias


def to_classifier(model, labels: list[str]):
    """A SentenceEmbeddingClassifier computing `model`'s (a SetFitModel with a LogisticRegression head)
    probabilities."""
    body = model.model_body
    mode, normalize = pooling_of(body)
    encoder = body[0].auto_model
    config = copy.deepcopy(encoder.config)
    config.num_labels = len(labels)
    config.id2label, config.label2id = dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}
    config.transfer_head, config.transfer_pooling, config.transfer_normalize = HEAD, mode, normalize
    classifier = sentence_classifier_class(config)(config)
    missing, unexpected = classifier.body.load_state_dict(encoder.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pooler.") for key in missing):
        raise ModelError(f"setfit: the encoder's weights do not fit its architecture (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    weight, bias = head_weights(model.model_head, len(labels))
    with torch.no_grad():
        classifier.classifier.weight.copy_(torch.as_tensor(weight))
        classifier.classifier.bias.copy_(torch.as_tensor(bias))
    return classifier.eval()
