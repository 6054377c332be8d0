"""SetFit (Tunstall et al. 2022): contrastive fine-tuning of a sentence-transformer on pairs of the
labeled examples, then a logistic-regression head on its embeddings. The few-shot peer a user with 100
labels would try first; it ignores the source domain, so it is the bar the transfer has to clear.
"""

from __future__ import annotations

import numpy as np


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
