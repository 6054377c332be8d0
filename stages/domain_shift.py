"""domain_shift: how far apart the source and target domains are, and whether adaptation closed the gap.

On the same balanced sample of held-out texts per domain (validation + test: no checkpoint was
trained on them) it measures the text-level distance, the base tokenizer's fit, and the
embedding-level distance (proxy A-distance, MMD) with three checkpoints of the encoder: the base
model, after pretrain_domain (models/domain) and after finetune_target (models/trained/target).
Writes metrics/domain.json and metrics/plots/domain_projection.csv (2-D projection per checkpoint,
coloured by domain and shaped by label in `dvc plots show`). See transfer/analysis/domain_metrics.py.
"""

from __future__ import annotations

from pathlib import Path

from transformers.utils import logging as transformers_logging

from transfer.analysis.domain_shift import DOMAINS, balanced_sample, embedding_report, text_report
from transfer.core.artifacts import read_jsonl, trained_folder, write_csv, write_json
from transfer.core.modeling import load_encoder, load_tokenizer, resolve_model
from transfer.core.params import load_params
from transfer.core.stage_entry import run_stage
from transfer.core.switches import not_run_record, switched_off
from transfer.tasks.registry import task_for

CLEAN = Path("data/clean")
HELDOUT_SPLITS = ("validation", "test")


def main() -> None:
    # Task heads (MLM, classifier) are dropped on purpose when loading the encoders: no load reports.
    transformers_logging.set_verbosity_error()
    params = load_params()
    task = task_for(params)
    config = params.domain_shift
    if not config.enabled:
        write_json("metrics/domain.json", not_run_record("domain_shift"))
        write_csv("metrics/plots/domain_projection.csv", [], fieldnames=["checkpoint", "domain", "label", "x", "y"])
        print(f"domain_shift: not run: {switched_off('domain_shift')}")
        return
    pools = {domain: [row for split in HELDOUT_SPLITS if (CLEAN / domain / f"{split}.jsonl").exists()
                      for row in read_jsonl(CLEAN / domain / f"{split}.jsonl")] for domain in DOMAINS}
    sample = balanced_sample(pools, config.sample_size, params.seed)
    texts = {domain: [task.text(row) for row in rows] for domain, rows in sample.items()}
    labels = {domain: [row.get("label") for row in rows] for domain, rows in sample.items()}
    report = text_report(texts, load_tokenizer(resolve_model(params.model.name), params), config.vocab_top_k)
    report["embeddings"], projection = {}, []
    checkpoints = {"base": resolve_model(params.model.name), "domain": "models/domain",
                   "target": str(trained_folder("target"))}
    for name, path in checkpoints.items():
        distances, rows = embedding_report(load_encoder(path, params), load_tokenizer(path, params), texts, labels,
                                           name, config, max_length=params.tokenize.max_length,
                                           batch_size=params.evaluate.batch_size, seed=params.seed)
        report["embeddings"][name] = distances
        projection += rows
        print(f"domain_shift: {name:<7} PAD {distances['proxy_a_distance']:.3f}  MMD^2 {distances['mmd2']:.4f}")
    write_json("metrics/domain.json", report)
    write_csv("metrics/plots/domain_projection.csv", projection)
    text = report["text"]
    print(f"domain_shift: vocabulary overlap {text['vocabulary_overlap']:.3f}, JS divergence "
          f"{text['js_divergence']:.3f}; target words split by the tokenizer "
          f"{report['tokenizer']['target']['split_word_rate']:.1%}")


if __name__ == "__main__":
    run_stage(main)
