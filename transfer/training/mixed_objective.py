"""A mixed objective in the target phase (finetune.mixed_mlm; UDALM, Karouzos et al. 2021): each step's loss is
the classification loss on a batch of labeled target examples plus `weight` x the masked-LM loss on a batch of
unlabeled target text, through one shared encoder.

Domain-adaptive pretraining (pretrain_domain) teaches the encoder the target's text; a target phase of 8
epochs on 100-200 labels then moves it on the labels alone and can forget part of it. Keeping the MLM loss on
in the same steps holds the encoder to the target text while the classifier learns. The MLM head is the one
pretrain_domain trained (models/domain): a fresh head would feed noise into the encoder.
"""

from __future__ import annotations

import datasets
import torch
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, DataCollatorWithPadding

from transfer.core.errors import ModelError
from transfer.core.modeling import backbone_of, load_kwargs
from transfer.core.params import Params
from transfer.training.pretraining import MaskedPositionsMLM, TiedTensorsOnce

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class ClassifierWithMLM(TiedTensorsOnce, torch.nn.Module):
    """A sequence classifier and an MLM head on the classifier's own encoder. Only `classifier` is saved: the
    MLM head is scaffolding for the phase."""

    def __init__(self, classifier, mlm, weight: float, classification_loss=None):
        super().__init__()
        self.classification_loss = classification_loss  # e.g. class-weighted (augment.rebalance: class_weights)
        setattr(mlm, mlm.base_model_prefix, getattr(classifier, classifier.base_model_prefix))
        mlm.tie_weights()  # the decoder is the (shared) word-embedding matrix again
        self.classifier, self.mlm, self.weight = classifier, MaskedPositionsMLM(mlm), weight
        self.config = classifier.config

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, mlm_input_ids=None,
                mlm_attention_mask=None, mlm_token_type_ids=None, mlm_targets=None):
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.classifier(input_ids=input_ids, attention_mask=attention_mask, **extra)
        if labels is None:
            return {"logits": out.logits}
        loss = (self.classification_loss(out, labels) if self.classification_loss
                else torch.nn.functional.cross_entropy(out.logits, labels))
        if self.training and mlm_input_ids is not None:
            mlm = self.mlm(input_ids=mlm_input_ids, attention_mask=mlm_attention_mask,
                           token_type_ids=mlm_token_type_ids, labels=mlm_targets)
            loss = loss + self.weight * mlm["loss"]
        return {"loss": loss, "logits": out.logits}

    def tie_weights(self) -> None:
        self.mlm.tie_weights()


class MixedBatchCollator:
    """Pads a batch of labeled examples and adds a batch of the same size of unlabeled texts, drawn at random
    (torch's global RNG, which Trainer seeds and checkpoints) and masked for MLM, under `mlm_` keys."""

    def __init__(self, tokenizer, unlabeled: datasets.Dataset, mlm_probability: float):
        if len(unlabeled) == 0:
            raise ModelError("finetune.mixed_mlm: there is no unlabeled target text for the MLM loss; lower "
                             "data.target_train_labeled or set mixed_mlm.weight: 0")
        self.pad = DataCollatorWithPadding(tokenizer)
        self.mask = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
        columns = [c for c in INPUTS if c in unlabeled.column_names]
        self.unlabeled = unlabeled.select_columns(columns)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.pad([{k: v for k, v in f.items() if k in (*INPUTS, "label")} for f in features])
        rows = torch.randint(len(self.unlabeled), (len(features),)).tolist()
        masked = self.mask([self.unlabeled[i] for i in rows])
        # mlm_targets, not mlm_labels: Trainer takes every forward argument named *label* for a label of the task.
        masked["targets"] = masked.pop("labels")
        return batch | {f"mlm_{key}": value for key, value in masked.items()}


def with_mlm_head(classifier, init: str, params: Params, classification_loss=None) -> ClassifierWithMLM:
    """The classifier wrapped with the MLM head saved in `init` (refused when `init` has none)."""
    if backbone_of(init, params) != "encoder":
        raise ModelError(f"finetune.mixed_mlm: the masked-LM objective needs an encoder, and {params.model.name} is "
                         f"not one; set mixed_mlm.weight: 0 (a decoder's continued pretraining is pretrain_domain's)")
    mlm, info = AutoModelForMaskedLM.from_pretrained(init, output_loading_info=True, **load_kwargs(params, init))
    encoder = mlm.base_model_prefix
    fresh = [key for key in info["missing_keys"] if not key.startswith(f"{encoder}.")]
    if fresh:
        raise ModelError(f"finetune.mixed_mlm: {init} has no trained MLM head ({fresh[0]} ... would start random "
                         f"and feed noise into the encoder); keep pretrain_domain.enabled: true, whose model has one, "
                         f"or set mixed_mlm.weight: 0")
    return ClassifierWithMLM(classifier, mlm, params.finetune.mixed_mlm.weight, classification_loss)


def mixed_objective_arguments(classifier, tokenizer, init: str, unlabeled: datasets.Dataset, params: Params,
                              classification_loss=None) -> tuple[ClassifierWithMLM, dict]:
    """The model to train and the train_phase arguments of a target phase under the mixed objective."""
    wrapper = with_mlm_head(classifier, init, params, classification_loss)
    collator = MixedBatchCollator(tokenizer, unlabeled, params.pretrain_domain.mlm_probability)
    return wrapper, {"data_collator": collator}
