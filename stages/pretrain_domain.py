"""pretrain_domain: continued pretraining on unlabeled target text (TAPT): masked-LM for an encoder,
causal-LM for a decoder (the kind is read from model.name's config).

Target text is the task's (`Task.adaptation_texts`: the review, each distinct QA context once, the
source-side sentence) of the target train rows, labeled and unlabeled. Forgetting is measured on
`pretrain_domain.forgetting_texts` source validation texts. transfer/training/pretraining.py says why an
encoder reports three target losses (random head, before, after).
Writes models/domain (weights + tokenizer) and metrics/pretrain.json.
"""

from __future__ import annotations

import random
from pathlib import Path

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

from transfer.core.artifacts import atomic_path, read_jsonl, write_json
from transfer.core.errors import ParamsError
from transfer.core.modeling import backbone_kind, load_kwargs, load_tokenizer, resolve_model
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.tasks.registry import task_for
from transfer.training.causal_pretraining import adapt_causal
from transfer.training.checkpoints import resumable
from transfer.training.pretraining import adapt
from transfer.training.trainer import write_curves

CLEAN, DOMAIN, CURVES = Path("data/clean"), Path("models/domain"), Path("metrics/curves/pretrain.csv")
# Target texts whose labels the pipeline may not see, plus the labeled train texts (never val/test).
ADAPTATION_SPLITS = ("unlabeled", "train")
# General text for the forgetting figure: never trained on by this stage, nor used to pick anything.
GENERAL = CLEAN / "source" / "validation.jsonl"
COPY_CLASS = {"encoder": AutoModel, "decoder": AutoModelForCausalLM, "encoder-decoder": AutoModelForSeq2SeqLM}


def main() -> None:
    params = load_params()
    task = task_for(params)
    base = resolve_model(params.model.name)
    backbone = backbone_kind(AutoConfig.from_pretrained(base, trust_remote_code=params.model.trust_remote_code))
    if backbone == "encoder-decoder" and params.pretrain_domain.enabled:
        raise ParamsError(f"pretrain_domain: {params.model.name} is an encoder-decoder model; masked-LM adaptation "
                         f"here is for encoders (they are then warm-started into a seq2seq model). Set "
                         f"pretrain_domain.enabled: false, or use an encoder as model.name")
    with atomic_path(DOMAIN) as out:
        if params.pretrain_domain.enabled:
            run = resumable(params, DOMAIN, {"base": base}, [CLEAN / "target", GENERAL.parent, base])
            files = [CLEAN / "target" / f"{split}.jsonl" for split in ADAPTATION_SPLITS]
            texts = task.adaptation_texts([row for path in files if path.exists() for row in read_jsonl(path)])
            general = general_sample(task, params.pretrain_domain.forgetting_texts, params.seed)
            train = adapt_causal if backbone == "decoder" else adapt
            metrics = train(params, base, texts, general, out, run, CURVES)
            run.finish()
        else:
            COPY_CLASS[backbone].from_pretrained(base, **load_kwargs(params, base)).save_pretrained(out)
            load_tokenizer(base, params).save_pretrained(out)
            metrics = {"enabled": False}
            write_curves(CURVES, {})
    write_json("metrics/pretrain.json", {"backbone": backbone, **metrics})
    print(f"pretrain_domain: {metrics}")


def general_sample(task, size: int, seed: int) -> list[str]:
    """Up to `size` distinct source validation texts, drawn with the seed (sorted first, so the draw does
    not depend on file order)."""
    if size == 0 or not GENERAL.exists():
        return []
    texts = sorted(set(task.adaptation_texts(read_jsonl(GENERAL))))
    return random.Random(seed).sample(texts, min(size, len(texts)))


if __name__ == "__main__":
    run_stage(main)
