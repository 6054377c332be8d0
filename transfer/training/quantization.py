"""QLoRA (Dettmers et al. 2023): LoRA adapters trained over base weights frozen in 4-bit NF4, so a
decoder several times larger than the GPU's memory in fp16 still fine-tunes on it.

CUDA only: the 4-bit kernels are bitsandbytes'. The model that ships is the full-precision base with the
trained adapters (and the fully trained head) merged in, so every later stage reads an ordinary
checkpoint: merging into the quantized weights would ship their rounding error and need the GPU again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

import torch

from transfer.core.errors import ParamsError
from transfer.core.params import Params


def quantized_loading(params: Params) -> dict[str, Any]:
    """from_pretrained keywords for model.quantization (none: {}); refused, in one line, where it cannot run."""
    if params.model.quantization == "none":
        return {}
    if not torch.cuda.is_available():
        raise ParamsError("model.quantization: 4bit needs a CUDA GPU (bitsandbytes NF4 kernels); set "
                          "model.quantization: none on CPU")
    try:
        import bitsandbytes  # noqa: F401  (transformers imports it by name; fail here with what to do)
    except ImportError as error:
        raise ParamsError("model.quantization: 4bit needs bitsandbytes: pip install -e '.[gpu]'") from error
    from transformers import BitsAndBytesConfig  # after the checks: it needs bitsandbytes to be usable

    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                      bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype),
            "dtype": dtype}


def prepare_for_training(model, params: Params):
    """peft's preparation of a k-bit model: norms in fp32, inputs that carry gradients for checkpointing."""
    from peft import prepare_model_for_kbit_training  # optional: only finetune.peft: lora needs peft

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=params.model.gradient_checkpointing)


def merge_into_full_precision(peft_model, load_full_precision: Callable[[], Any]):
    """The trained adapters (and head) saved, loaded onto the full-precision base, and merged."""
    from peft import PeftModel  # optional: only finetune.peft: lora needs peft

    with tempfile.TemporaryDirectory(prefix="qlora-") as folder:
        peft_model.save_pretrained(folder)
        return PeftModel.from_pretrained(load_full_precision(), folder).merge_and_unload()
