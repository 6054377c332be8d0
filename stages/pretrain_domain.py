"""pretrain_domain: continued masked-LM pretraining on unlabeled target text (TAPT).

Target text is the task's (`Task.adaptation_texts`: the review, each distinct QA context once, the
source-side sentence) of the target train rows, labeled and unlabeled. transfer/training/pretraining.py
says why three losses are reported (random head, before, after).
Writes models/domain (weights + tokenizer) and metrics/pretrain.json.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from transfer.core.artifacts import atomic_path, read_jsonl, write_json
from transfer.core.errors import ParamsError, run_stage
from transfer.core.modeling import load_kwargs, load_tokenizer, resolve_model
from transfer.core.params import load_params
from transfer.tasks.registry import task_for
from transfer.training.checkpoints import resumable
from transfer.training.pretraining import adapt
from transfer.training.trainer import write_curves

CLEAN, DOMAIN, CURVES = Path("data/clean"), Path("models/domain"), Path("metrics/curves/pretrain.csv")
# Target texts whose labels the pipeline may not see, plus the labeled train texts (never val/test).
ADAPTATION_SPLITS = ("unlabeled", "train")


def main() -> None:
    params = load_params()
    task = task_for(params)
    base = resolve_model(params.model.name)
    seq2seq = AutoConfig.from_pretrained(base, trust_remote_code=params.model.trust_remote_code).is_encoder_decoder
    if seq2seq and params.pretrain_domain.enabled:
        raise ParamsError(f"pretrain_domain: {params.model.name} is an encoder-decoder model; masked-LM adaptation "
                         f"here is for encoders (they are then warm-started into a seq2seq model). Set "
                         f"pretrain_domain.enabled: false, or use an encoder as model.name")
    with atomic_path(DOMAIN) as out:
        if params.pretrain_domain.enabled:
            run = resumable(params, DOMAIN, {"base": base}, [CLEAN / "target", base])
            files = [CLEAN / "target" / f"{split}.jsonl" for split in ADAPTATION_SPLITS]
            texts = task.adaptation_texts([row for path in files if path.exists() for row in read_jsonl(path)])
            metrics = adapt(params, base, texts, out, run, CURVES)
            run.finish()
        else:
            copy = AutoModelForSeq2SeqLM if seq2seq else AutoModel
            copy.from_pretrained(base, **load_kwargs(params, base)).save_pretrained(out)
            load_tokenizer(base, params).save_pretrained(out)
            metrics = {"enabled": False}
            write_curves(CURVES, {})
    write_json("metrics/pretrain.json", metrics)
    print(f"pretrain_domain: {metrics}")


if __name__ == "__main__":
    run_stage(main)
