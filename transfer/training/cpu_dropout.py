"""Dropout masks drawn with numpy's PCG64 generator when training on CPU.

On a CPU, torch draws dropout masks with `bernoulli_` at ~5 ns an element on one core: for the
default fine-tune (MiniLM, batch 16, ~110 tokens) that is 14% of a training step, more than any
op but the matmuls (`make bench`, profile in docs/performance.md). numpy's PCG64 fills float32
uniforms ~3.5x faster. The masks have the same law (keep an element when U >= p, scale by
1/(1-p)); only the random stream differs. Each mask's seed is drawn from torch's global generator,
so `set_seed` still fixes a run and Trainer's RNG checkpoints still make a resumed run identical
to an uninterrupted one.

Hidden-state dropouts are `nn.Dropout` modules and are swapped for `NumpyDropout`. Attention-
probability dropout happens inside the attention function, so for encoders whose attention is
BERT's (ATTENTION_MODEL_TYPES) an attention function with the same maths as transformers'
`eager_attention_forward` is registered through `AttentionInterface`; in eval mode (and with no
dropout) it is transformers' SDPA path unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from transfer.core.errors import ModelError

if TYPE_CHECKING:
    from transfer.core.params import Params

ATTENTION_NAME = "sdpa_numpy_dropout"
# Model types whose self-attention calls the attention interface with (query, key, value, additive
# mask, dropout, scaling) and nothing else; tests/test_cpu_dropout.py checks each against eager.
ATTENTION_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra")


def numpy_dropout(inputs: torch.Tensor, p: float) -> torch.Tensor:
    seed = int(torch.randint(0, 2**62, ()).item())
    uniforms = np.random.Generator(np.random.PCG64(seed)).random(inputs.shape, dtype=np.float32)
    scaled_keep = torch.from_numpy(uniforms).ge_(p).mul_(1.0 / (1.0 - p)).to(inputs.dtype)
    return inputs * scaled_keep


class NumpyDropout(nn.Dropout):
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return inputs
        return numpy_dropout(inputs, self.p)


def attention_with_numpy_dropout(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 attention_mask: torch.Tensor | None, dropout: float = 0.0,
                                 scaling: float | None = None, **kwargs):
    causal_without_mask = attention_mask is None and getattr(module, "is_causal", False) and query.shape[2] > 1
    if not module.training or dropout == 0.0 or causal_without_mask:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    # Scaling the query rather than the scores, and adding the mask in place, spares two passes
    # over the (batch, heads, length, length) scores.
    scores = torch.matmul(query * scaling, key.transpose(2, 3))
    if attention_mask is not None:
        scores = scores.add_(attention_mask)
    probabilities = numpy_dropout(scores.softmax(dim=-1), dropout)
    return torch.matmul(probabilities, value).transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    AttentionInterface.register(ATTENTION_NAME, attention_with_numpy_dropout)
    AttentionMaskInterface.register(ATTENTION_NAME, eager_mask)  # additive float masks, as eager attention


def use_numpy_dropout(model: nn.Module) -> None:
    """Swap the model's dropouts (and, for BERT-like encoders, its attention dropout) in place.

    Idempotent; works through wrappers (peft, the MLM wrapper) since it walks all submodules.
    """
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, NumpyDropout(child.p))
    for submodule in model.modules():
        if (isinstance(submodule, PreTrainedModel) and submodule.config.model_type in ATTENTION_MODEL_TYPES
                and submodule.config._attn_implementation in ("sdpa", ATTENTION_NAME)):
            _register_attention()
            submodule.set_attn_implementation(ATTENTION_NAME)


def configure_dropout(model: nn.Module, params: Params, device: torch.device) -> None:
    """numpy masks when `model.cpu_dropout_masks` asks for them and training runs on the CPU (Trainer's args.device);
    and gradient checkpointing when `model.gradient_checkpointing` asks for it.

    Not numpy masks under gradient checkpointing: the recomputed forward must draw the masks it drew the
    first time, and torch's checkpoint restores torch's random state, not numpy's.
    """
    if params.model.gradient_checkpointing:
        if not hasattr(model, "gradient_checkpointing_enable"):
            raise ModelError(f"model.gradient_checkpointing: {type(model).__name__} cannot recompute activations; "
                             f"set it to false for this strategy")
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif params.model.cpu_dropout_masks == "numpy" and device.type == "cpu":
        use_numpy_dropout(model)
