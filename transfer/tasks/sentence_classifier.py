"""A SetFit model as a transformers sequence classifier: the encoder, its sentence pooling (mean or [CLS],
L2-normalized or not) and a linear head holding the logistic regression SetFit fitted on the embeddings.

Why a model class of our own: SetFit predicts with a scikit-learn head on pooled embeddings, which no
`AutoModelForSequenceClassification` computes (BERT's pools [CLS] through a tanh layer). Folding the
regression into a linear layer on the same pooled embedding gives the same probabilities through a plain
`forward`, so evaluate, compare, label budget, distill and domain shift use a SetFit model like any other.
The encoder sits under the base architecture's own prefix (`bert.` ...), so `AutoModel.from_pretrained` on
the folder loads the trained encoder (domain shift reads it that way).
"""

from __future__ import annotations

from functools import cache
from typing import Any

HEAD = "sentence_embedding"  # config.transfer_head of a model of this class
POOLING_MODES = ("mean", "cls")
# What the wrapper can do is what its encoder can: attention kernels are the encoder's.
ENCODER_CAPABILITIES = ("_supports_sdpa", "_supports_flash_attn", "_supports_flex_attn", "_supports_attention_backend",
                        "supports_gradient_checkpointing")


def is_sentence_classifier(config: Any) -> bool:
    return getattr(config, "transfer_head", None) == HEAD


def sentence_classifier_class(config: Any) -> type:
    """The SentenceEmbeddingClassifier subclass whose encoder attribute is the base model's prefix for this
    architecture (`bert` ...), with the encoder's attention capabilities."""
    from transformers import MODEL_MAPPING  # heavy: the data stages import the tasks, and this module with them

    return _subclass(MODEL_MAPPING[type(config)])


@cache
def _subclass(encoder_class: type) -> type:
    attributes = {name: getattr(encoder_class, name) for name in ENCODER_CAPABILITIES if hasattr(encoder_class, name)}
    return type(f"SentenceEmbeddingClassifier_{encoder_class.base_model_prefix}", (sentence_embedding_classifier(),),
                {"base_model_prefix": encoder_class.base_model_prefix, **attributes})


@cache
def sentence_embedding_classifier() -> type:
    """The SentenceEmbeddingClassifier class (built on first use: transformers is heavy to import)."""
    import torch  # heavy: see sentence_classifier_class
    from torch import nn
    from transformers import AutoModel, PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class SentenceEmbeddingClassifier(PreTrainedModel):
        """logits = W · pool(encoder(x)) + b, where pool is config.transfer_pooling, L2-normalized when
        config.transfer_normalize."""

        base_model_prefix = "encoder"

        def __init__(self, config: PretrainedConfig):
            super().__init__(config)
            setattr(self, self.base_model_prefix, AutoModel.from_config(config))
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
            self.post_init()

        @property
        def body(self) -> nn.Module:
            return getattr(self, self.base_model_prefix)

        def embed(self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states=None):
            """The pooled sentence embedding and the encoder's outputs."""
            extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            outputs = self.body(input_ids=input_ids, attention_mask=attention_mask,
                                output_hidden_states=output_hidden_states, **extra)
            states = outputs.last_hidden_state
            if self.config.transfer_pooling == "cls":
                pooled = states[:, 0]
            else:
                mask = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).unsqueeze(-1)
                mask = mask.to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.config.transfer_normalize:
                pooled = nn.functional.normalize(pooled, p=2, dim=-1)
            return pooled, outputs

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                    output_hidden_states=None, return_dict=None, **_unused) -> SequenceClassifierOutput:
            pooled, outputs = self.embed(input_ids, attention_mask, token_type_ids, output_hidden_states)
            logits = self.classifier(pooled)
            loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)

    return SentenceEmbeddingClassifier
