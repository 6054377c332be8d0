"""base_model: model.name as every later stage loads it.

A GGUF checkpoint (embedded:SmolLM2-135M-Instruct, or a path to a .gguf file) is converted once into
models/base, a safetensors folder with its tokenizer, chat template and provenance.json (package, version,
file hash, the quantization it was dequantized from): transfer/core/gguf_checkpoints.py says why. Any other
model.name is read where it is; models/base then holds only provenance.json naming it, so that the stages
reading the model depend on this one alike.
"""

from __future__ import annotations

import json
import time

from transfer.core.artifacts import atomic_path
from transfer.core.gguf_checkpoints import PROVENANCE, convert_gguf
from transfer.core.modeling import CONVERTED_MODEL, gguf_source, model_fingerprint, resolve_model
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage


def main() -> None:
    params = load_params()
    name = params.model.name
    source = gguf_source(name)
    with atomic_path(CONVERTED_MODEL) as out:
        if source is None:
            out.mkdir(parents=True)
            # No path here: the same model must hash the same on every machine, or the run cache misses.
            provenance = {"converted_from": None, **model_fingerprint(name)}
            (out / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
            print(f"base_model: {name} is read where it is ({resolve_model(name)}); nothing to convert")
            return
        start = time.perf_counter()
        provenance = convert_gguf(source, out, trust_remote_code=params.model.trust_remote_code)
    print(f"base_model: {name} ({provenance['file_type']}, {provenance['parameters'] / 1e6:.1f}M parameters) "
          f"dequantized to float32 in {CONVERTED_MODEL} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    run_stage(main)
