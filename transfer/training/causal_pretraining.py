"""Continued causal-LM pretraining of a decoder on unlabeled target text (the decoder's DAPT / TAPT).

As HF's run_clm: each text ends with the end-of-text token, the texts are joined and cut into blocks of
`pretrain_domain.max_length` tokens, so no step is spent on padding. Unlike run_clm the remainder is
kept as one shorter block rather than dropped: with a few hundred reviews it can be a tenth of the text.

Held-out target texts give the perplexity before and after; held-out general text (source-domain
validation rows) gives the forgetting figure: what adapting to the target cost the model elsewhere.
"""

from __future__ import annotations

import random
from pathlib import Path

import datasets
import torch
from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq

from transfer.core.errors import DataError
from transfer.core.modeling import load_kwargs, load_tokenizer, set_seed, training_arguments
from transfer.core.params import Params
from transfer.training.checkpoints import ResumableRun, checkpoint_arguments
from transfer.training.cpu_dropout import configure_dropout
from transfer.training.pretraining import NO_GENERAL_TEXT, forgetting_report, report
from transfer.training.trainer import LengthSortedTrainer, write_curves


def pack_blocks(texts: list[str], tokenizer, block_size: int) -> datasets.Dataset:
    """Token blocks of `block_size` (the last one shorter) from texts joined by the end-of-text token;
    labels are the inputs (the model shifts them)."""
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]:
        stream.extend(ids)
        if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
            stream.append(tokenizer.eos_token_id)
    blocks = [stream[start:start + block_size] for start in range(0, len(stream), block_size)]
    blocks = [block for block in blocks if len(block) > 1]  # a one-token block predicts nothing
    return datasets.Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks],
                                       "labels": blocks})


def block_collator(tokenizer) -> DataCollatorForSeq2Seq:
    """Pads the short last block: inputs with the pad token, labels with -100 (ignored by the loss)."""
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)


def token_loss(model, blocks: datasets.Dataset, tokenizer, batch_size: int) -> float:
    """Mean next-token loss over every predicted token of `blocks` (token-weighted, so a short block
    weighs what its tokens weigh)."""
    collate = block_collator(tokenizer)
    total, tokens = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(blocks), batch_size):
            batch = collate([blocks[i] for i in range(start, min(start + batch_size, len(blocks)))])
            batch = {key: value.to(model.device) for key, value in batch.items()}
            predicted = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * predicted
            tokens += predicted
    model.train(was_training)
    return total / max(tokens, 1)


def split_heldout(texts: list[str], params: Params) -> tuple[list[str], list[str]]:
    """(train, held-out) target texts, shuffled with the seed."""
    texts = sorted(texts)
    random.Random(params.seed).shuffle(texts)
    n_heldout = max(1, round(params.pretrain_domain.heldout_fraction * len(texts)))
    train, heldout = texts[n_heldout:], texts[:n_heldout]
    if not train:
        raise DataError(f"pretrain_domain: only {len(texts)} target texts, too few to adapt on; add unlabeled "
                        f"target text or set pretrain_domain.enabled: false")
    return train, heldout


def adapt_causal(params: Params, base: str, texts: list[str], general: list[str], out: Path, run: ResumableRun,
                 curves: Path) -> dict:
    """Causal-LM training of the decoder at `base` on `texts`; saves it (with its LM head, so the
    classifier and prompting stages can both start from it) to `out` and returns the held-out target
    losses before and after, and the forgetting figure on `general` texts."""
    config = params.pretrain_domain
    tokenizer = load_tokenizer(base, params)
    set_seed(params.seed)
    train_texts, heldout_texts = split_heldout(texts, params)
    train = pack_blocks(train_texts, tokenizer, config.max_length)
    heldout = pack_blocks(heldout_texts, tokenizer, config.max_length)
    general_blocks = pack_blocks(general, tokenizer, config.max_length) if general else None
    model = AutoModelForCausalLM.from_pretrained(base, **load_kwargs(params, base))
    metrics: dict = {"enabled": True, "objective": "causal_lm", "train_texts": len(train_texts),
                     "heldout_texts": len(heldout_texts), "train_blocks": len(train), "block_size": config.max_length}
    evaluation_batch = max(1, config.batch_size * 2)
    metrics["before"] = report(token_loss(model, heldout, tokenizer, evaluation_batch))
    general_before = token_loss(model, general_blocks, tokenizer, evaluation_batch) if general_blocks else None
    phases = {}
    if config.epochs > 0:
        args = training_arguments(run.phase_dir("full"), seed=params.seed, epochs=config.epochs,
                                  learning_rate=config.learning_rate, batch_size=config.batch_size,
                                  eval_each_epoch=False, warmup_ratio=0.06, group_by_length=False,
                                  **checkpoint_arguments(params.checkpoint.every_steps, mid_epoch=False,
                                                         examples=len(train), batch_size=config.batch_size,
                                                         epochs=config.epochs))
        configure_dropout(model, params, args.device)
        trainer = LengthSortedTrainer(model=model, args=args, train_dataset=train,
                                      data_collator=block_collator(tokenizer))
        phases["full"] = run.train(trainer, "full")
        metrics["after"] = report(token_loss(model, heldout, tokenizer, evaluation_batch))
    else:
        metrics["after"] = metrics["before"]
    metrics["loss_reduction"] = round(metrics["before"]["loss"] - metrics["after"]["loss"], 4)
    metrics["forgetting"] = forgetting(general_before, model, general_blocks, tokenizer, evaluation_batch,
                                       texts=len(general))
    write_curves(curves, phases)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return metrics


def forgetting(before: float | None, model, blocks, tokenizer, batch_size: int, texts: int) -> dict:
    if before is None:
        return NO_GENERAL_TEXT
    after = token_loss(model, blocks, tokenizer, batch_size)
    return forgetting_report(before, after, texts)
