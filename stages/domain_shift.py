"""domain_shift: how far apart the source and target domains are, and whether adaptation closed the gap.

On the same balanced sample of held-out texts per domain (validation + test: no checkpoint was
trained on them) it measures the text-level distance, the base tokenizer's fit, and the
embedding-level distance (proxy A-distance, MMD) with three checkpoints of the encoder: the base
model, after pretrain_domain (models/domain) and after finetune_target (models/target).
Writes metrics/domain.json and metrics/plots/domain_projection.csv (2-D projection per checkpoint,
coloured by domain and shaped by label in `dvc plots show`). See stages/domain_metrics.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from transformers.utils import logging as transformers_logging

from transfer.analysis.domain_metrics import (
    js_divergence,
    length_summary,
    mean_pooled_embeddings,
    mmd_rbf,
    project_2d,
    proxy_a_distance,
    tokenizer_fit,
    vocabulary_overlap,
    word_counts,
)
from transfer.core.artifacts import read_jsonl, write_csv, write_json
from transfer.core.errors import run_stage
from transfer.core.modeling import load_encoder, load_tokenizer, resolve_model
from transfer.core.params import Params, load_params
from transfer.tasks.registry import task_for

CLEAN = Path("data/clean")
DOMAINS = ("source", "target")
HELDOUT_SPLITS = ("validation", "test")


def balanced_sample(params: Params) -> dict[str, list[dict]]:
    """Up to domain_shift.sample_size held-out rows per domain, the same number from each.

    Equal sizes keep the domain classifier's chance level at 50% and the divergences comparable.
    """
    pools = {domain: [row for split in HELDOUT_SPLITS if (CLEAN / domain / f"{split}.jsonl").exists()
                      for row in read_jsonl(CLEAN / domain / f"{split}.jsonl")] for domain in DOMAINS}
    size = min(params.domain_shift.sample_size, *(len(rows) for rows in pools.values()))
    rng = random.Random(params.seed)
    return {domain: rng.sample(rows, size) for domain, rows in pools.items()}


def checkpoints(params: Params) -> dict[str, str]:
    return {"base": resolve_model(params.model.name), "domain": "models/domain", "target": "models/target"}


def main() -> None:
    # Task heads (MLM, classifier) are dropped on purpose when loading the encoders: no load reports.
    transformers_logging.set_verbosity_error()
    params = load_params()
    task = task_for(params)
    config = params.domain_shift
    sample = balanced_sample(params)
    texts = {domain: [task.text(row) for row in rows] for domain, rows in sample.items()}
    tokenizer = load_tokenizer(resolve_model(params.model.name), params)
    token_lengths = {d: [len(ids) for ids in tokenizer(t, add_special_tokens=False)["input_ids"]]
                     for d, t in texts.items()}

    report = {
        "sample_per_domain": len(texts["source"]),
        "text": {
            "vocabulary_overlap": vocabulary_overlap(texts["source"], texts["target"], config.vocab_top_k),
            "js_divergence": js_divergence(texts["source"], texts["target"]),
            "vocabulary_size": {d: len(word_counts(t)) for d, t in texts.items()},
        },
        "tokenizer": {d: tokenizer_fit(t, tokenizer) for d, t in texts.items()},
        "length_tokens": {d: length_summary(lengths) for d, lengths in token_lengths.items()},
        "length_words": {d: length_summary([len(text.split()) for text in t]) for d, t in texts.items()},
        "embeddings": {},
    }
    projection = []
    for name, path in checkpoints(params).items():
        encoder = load_encoder(path, params)
        encoder_tokenizer = load_tokenizer(path, params)
        embedded = {d: mean_pooled_embeddings(encoder, encoder_tokenizer, t, max_length=params.tokenize.max_length,
                                              batch_size=params.evaluate.batch_size) for d, t in texts.items()}
        report["embeddings"][name] = {
            **proxy_a_distance(embedded["source"], embedded["target"], config.heldout_fraction, params.seed),
            **mmd_rbf(embedded["source"], embedded["target"])}
        print(f"domain_shift: {name:<7} PAD {report['embeddings'][name]['proxy_a_distance']:.3f}  "
              f"MMD^2 {report['embeddings'][name]['mmd2']:.4f}")
        points = project_2d(np.concatenate([embedded[d] for d in DOMAINS]), config.projection, params.seed)
        rows = [(d, row.get("label")) for d in DOMAINS for row in sample[d]]
        projection += [{"checkpoint": name, "domain": d, "label": label, "x": round(float(x), 4),
                        "y": round(float(y), 4)} for (d, label), (x, y) in zip(rows, points, strict=True)]
    write_json("metrics/domain.json", report)
    write_csv("metrics/plots/domain_projection.csv", projection)
    text = report["text"]
    print(f"domain_shift: vocabulary overlap {text['vocabulary_overlap']:.3f}, JS divergence "
          f"{text['js_divergence']:.3f}; target words split by the tokenizer "
          f"{report['tokenizer']['target']['split_word_rate']:.1%}")


if __name__ == "__main__":
    run_stage(main)
