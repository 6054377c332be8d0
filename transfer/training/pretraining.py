"""Continued masked-LM pretraining (domain- / task-adaptive pretraining) of an encoder, and the loss
reports both pretraining objectives share (causal_pretraining.py holds the decoders' one).

The packaged MiniLM ships without an MLM head, so a freshly initialised head makes the "before"
loss meaningless (~11, worse than uniform). `adapt` therefore reports three numbers on the same
held-out texts with the same masks: the random head, the head warmed up on a frozen encoder (the
honest "before": what the base encoder knows), and after adapting the whole model.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import datasets
import torch
from transformers import AutoModel, AutoModelForMaskedLM, DataCollatorForLanguageModeling, default_data_collator

from transfer.core.errors import DataError
from transfer.core.modeling import load_kwargs, load_tokenizer, set_seed, training_arguments
from transfer.core.params import Params
from transfer.training.checkpoints import ResumableRun, checkpoint_arguments
from transfer.training.cpu_dropout import configure_dropout
from transfer.training.trainer import LengthSortedTrainer, write_curves


def load_masked_lm(base: str, params: Params):
    """An MLM model whose encoder keeps the base checkpoint's pooler.

    BertForMaskedLM drops the pooler; saved that way, the classifier fine-tuned later would start
    from a random pooler. Swapping in the full base encoder keeps it (frozen: MLM never uses it).
    """
    mlm = AutoModelForMaskedLM.from_pretrained(base, **load_kwargs(params, base))
    encoder = AutoModel.from_pretrained(base, **load_kwargs(params, base))
    setattr(mlm, mlm.base_model_prefix, encoder)
    mlm.tie_weights()
    for name, parameter in encoder.named_parameters():
        if name.startswith("pooler."):
            parameter.requires_grad_(False)
    return mlm


class TiedTensorsOnce:
    """state_dict with each tied tensor once, for training wrappers that are not a PreTrainedModel.

    Trainer checkpoints such a wrapper with safetensors' save_file, which refuses tensors that share
    memory (an MLM decoder is the word-embedding matrix); it loads them back with strict=False, and
    the tied twin is the same tensor, so it is restored too.
    """

    def state_dict(self, *args, **kwargs):
        state, seen = super().state_dict(*args, **kwargs), set()
        for key in list(state):
            tensor = state[key]
            identity = (tensor.data_ptr(), tuple(tensor.shape))
            if identity in seen:
                del state[key]
            seen.add(identity)
        return state

    @property
    def _keys_to_ignore_on_save(self) -> list[str]:
        """The twins state_dict leaves out: Trainer re-ties them after loading a checkpoint."""
        return sorted(set(super().state_dict()) - set(self.state_dict()))


class MaskedPositionsMLM(TiedTensorsOnce, torch.nn.Module):
    """Runs the MLM head only at masked positions: same loss, ~2x faster on CPU.

    The full-vocabulary projection at every position dominates an MLM step (30k outputs per token
    where 15% of tokens carry a label). Heads are position-wise, so projecting the masked rows
    alone is exact. It stays an nn.Module that Trainer (and DDP) wrap as usual; only the inner
    model is saved. Models whose head is split over several modules use the full forward.
    """

    def __init__(self, mlm):
        super().__init__()
        self.mlm = mlm
        heads = [name for name, _ in mlm.named_children() if name != mlm.base_model_prefix]
        self.head_name = heads[0] if len(heads) == 1 else None

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        if self.head_name is None or labels is None:
            return self.mlm(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            labels=labels)
        encoder = getattr(self.mlm, self.mlm.base_model_prefix)
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        masked = labels != -100
        logits = getattr(self.mlm, self.head_name)(hidden[masked])
        loss = torch.nn.functional.cross_entropy(logits, labels[masked]) if masked.any() else hidden.sum() * 0
        return {"loss": loss}

    def tie_weights(self) -> None:
        self.mlm.tie_weights()


def mlm_datasets(texts: list[str], tokenizer, params: Params) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(train, held-out) tokenized texts; held-out masks are drawn once, so every model sees the same."""
    config = params.pretrain_domain
    texts = sorted(texts)
    random.Random(params.seed).shuffle(texts)
    n_heldout = max(1, round(config.heldout_fraction * len(texts)))
    rows = encoded_rows(texts, tokenizer, params)
    heldout, train = rows[:n_heldout], rows[n_heldout:]
    if not train:
        raise DataError(f"pretrain_domain: only {len(texts)} target texts, too few to adapt on; add unlabeled "
                         f"target text or set pretrain_domain.enabled: false")
    return datasets.Dataset.from_list(train), fixed_masks(heldout, tokenizer, params)


def encoded_rows(texts: list[str], tokenizer, params: Params) -> list[dict]:
    encoded = tokenizer(texts, truncation=True, max_length=params.pretrain_domain.max_length,
                        return_special_tokens_mask=True)
    rows = [dict(zip(encoded.keys(), values, strict=True)) for values in zip(*encoded.values(), strict=True)]
    for row in rows:
        row["length"] = len(row["input_ids"])
    return rows


def fixed_masks(rows: list[dict], tokenizer, params: Params) -> datasets.Dataset:
    """Rows masked once with the seed: before and after are scored on the same masked tokens."""
    masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=params.pretrain_domain.mlm_probability,
                                             seed=params.seed)
    masked = masker([{k: v for k, v in r.items() if k != "length"} for r in rows])
    return datasets.Dataset.from_dict({k: v.tolist() for k, v in masked.items()})


def heldout_loss(trainer, fixed: datasets.Dataset) -> float:
    collator, trainer.data_collator = trainer.data_collator, default_data_collator
    loss = trainer.evaluate(eval_dataset=fixed)["eval_loss"]
    trainer.data_collator = collator
    return float(loss)


def report(loss: float) -> dict:
    return {"loss": round(loss, 4), "perplexity": round(math.exp(min(loss, 50.0)), 2)}


def forgetting_report(before: float, after: float, texts: int) -> dict:
    """Loss on general text before and after adaptation; a positive `loss_increase` is forgetting."""
    return {"texts": texts, "before": report(before), "after": report(after),
            "loss_increase": round(after - before, 4)}


NO_GENERAL_TEXT = {"skipped": "no general text (source validation rows) to measure it on"}


def adapt(params: Params, base: str, texts: list[str], general: list[str], out: Path, run: ResumableRun,
          curves: Path) -> dict:
    """Warm a fresh MLM head up on the frozen encoder, then adapt the whole model on `texts`; saves the
    model to `out` and returns the held-out losses (random head, before, after) and the forgetting
    figure: the MLM loss on `general` texts (same masks) before and after."""
    config = params.pretrain_domain
    tokenizer = load_tokenizer(base, params)
    set_seed(params.seed)
    train, fixed = mlm_datasets(texts, tokenizer, params)
    general_fixed = fixed_masks(encoded_rows(general, tokenizer, params), tokenizer, params) if general else None
    model = load_masked_lm(base, params)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability)
    encoder = getattr(model, model.base_model_prefix)
    metrics: dict = {"enabled": True, "objective": "masked_lm", "train_texts": len(train),
                     "heldout_texts": len(fixed)}

    def phase(name: str, epochs: float, learning_rate: float) -> LengthSortedTrainer:
        args = training_arguments(run.phase_dir(name), seed=params.seed, epochs=epochs,
                                  learning_rate=learning_rate, batch_size=config.batch_size,
                                  eval_each_epoch=False, warmup_ratio=0.06, prediction_loss_only=True,
                                  **checkpoint_arguments(params.checkpoint.every_steps, mid_epoch=False,
                                                         examples=len(train), batch_size=config.batch_size,
                                                         epochs=epochs))
        configure_dropout(model, params, args.device)
        return LengthSortedTrainer(model=MaskedPositionsMLM(model), args=args, train_dataset=train,
                                   data_collator=collator)

    head_phase = phase("head", config.head_warmup_epochs, config.head_learning_rate)
    metrics["random_head"] = report(heldout_loss(head_phase, fixed))
    if config.head_warmup_epochs > 0:
        encoder.requires_grad_(False)
        run.train(head_phase, "head")
        encoder.requires_grad_(True)
        for name, parameter in encoder.named_parameters():
            parameter.requires_grad_(not name.startswith("pooler."))
    metrics["before"] = report(heldout_loss(head_phase, fixed))
    general_before = heldout_loss(head_phase, general_fixed) if general_fixed is not None else None
    phases = {"head": head_phase}
    if config.epochs > 0:
        phases["full"] = run.train(phase("full", config.epochs, config.learning_rate), "full")
        metrics["after"] = report(heldout_loss(phases["full"], fixed))
    else:
        metrics["after"] = metrics["before"]
    metrics["loss_reduction"] = round(metrics["before"]["loss"] - metrics["after"]["loss"], 4)
    metrics["forgetting"] = (NO_GENERAL_TEXT if general_before is None else forgetting_report(
        general_before, heldout_loss(phases.get("full", head_phase), general_fixed), len(general)))
    write_curves(curves, phases)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return metrics
