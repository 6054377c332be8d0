"""Prompting baselines for classification: what a causal LM does with no training.

Each label is scored by the log-likelihood of its verbalizer after the prompt (the sum over the
verbalizer's tokens, as lm-evaluation-harness' `acc`), and the most likely label is the prediction: no
free-text parsing, so every test example gets exactly one of data.labels. zero_shot prompts with the
template alone; few_shot puts k labeled target train examples (drawn with the seed, classes taken in
turn so that each appears when k allows) before it, the same demonstrations for every test example.

An instruct model is prompted through its chat template (the instruction and the text as the user's turn,
the verbalizer as the start of the assistant's; demonstrations as earlier turns): prompted as a base model
it answers a different question. A base model, or prompting.chat_template: never, gets the plain template.

Raw verbalizer likelihoods carry the model's prior over the label words: tried on product reviews, a chat-
templated SmolLM2-135M gave one label to everything. Contextual calibration (Zhao et al. 2021, "Calibrate
before use") divides each label's probability by its probability after content-free inputs ("N/A", "",
"[MASK]") in the same prompt; both raw and calibrated are reported.
"""

from __future__ import annotations

import copy
import inspect
import random
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from transfer.core.errors import ModelError
from transfer.core.modeling import backbone_of, load_kwargs, load_tokenizer, resolve_model
from transfer.core.params import Params, PromptingParams

FEW_SHOT_SEPARATOR = "\n\n"
# Zhao et al. (2021)'s content-free inputs: the label probabilities after them estimate the prompt's own bias.
CONTENT_FREE_TEXTS = ("N/A", "", "[MASK]")


def uses_chat_template(tokenizer, config: PromptingParams) -> bool:
    return config.chat_template == "auto" and bool(getattr(tokenizer, "chat_template", None))


def verbalizers(config: PromptingParams, labels: list[str], chat: bool = False) -> list[str]:
    """The words scored for each label: params' own, else " <label name>" (the leading space is how a
    word follows a colon in BPE vocabularies), or the bare name where it opens the assistant's turn."""
    return [config.verbalizers.get(label, label if chat else f" {label}") for label in labels]


def demonstrations(rows: list[dict], k: int, seed: int, labels: list[str]) -> list[dict]:
    """k labeled rows drawn with the seed, classes in turn (in the order of a seeded shuffle of each class),
    then shuffled so the order carries no label pattern."""
    rng = random.Random(seed)
    by_class = {label: sorted((r for r in rows if r["label"] == label), key=lambda r: r["id"]) for label in labels}
    for members in by_class.values():
        rng.shuffle(members)
    chosen: list[dict] = []
    while len(chosen) < k and any(by_class.values()):
        for label in labels:
            if by_class[label] and len(chosen) < k:
                chosen.append(by_class[label].pop())
    if len(chosen) < k:
        raise ModelError(f"prompting.few_shot_k: {k} demonstrations asked for, and the labeled target train set has "
                         f"{len(chosen)}; lower prompting.few_shot_k")
    rng.shuffle(chosen)
    return chosen


def shorten(text: str, tokenizer, max_tokens: int) -> str:
    """The text cut to `max_tokens` tokens, so k demonstrations and the query fit the context."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


def build_prompts(texts: list[str], config: PromptingParams, tokenizer, shots: list[dict],
                  label_words: dict[str, str], chat: bool = False) -> list[str]:
    """The prompt of each text: the demonstrations (template + their verbalizer), then the template; through
    the tokenizer's chat template when `chat` (prompting.instruction opens each user turn)."""
    def fill(text: str) -> str:
        return config.template.format(text=shorten(text, tokenizer, config.max_text_tokens))

    if not chat:
        prefix = "".join(fill(shot["text"]) + label_words[shot["label"]] + FEW_SHOT_SEPARATOR for shot in shots)
        return [prefix + fill(text) for text in texts]
    instruction = config.instruction.format(labels=", ".join(label_words))

    def user(text: str) -> dict:
        return {"role": "user", "content": f"{instruction}\n\n{fill(text)}"}

    turns = [turn for shot in shots for turn in (user(shot["text"]),
                                                 {"role": "assistant", "content": label_words[shot["label"]]})]
    return [tokenizer.apply_chat_template([*turns, user(text)], tokenize=False, add_generation_prompt=True)
            for text in texts]


def shared_prefix(sequences: list[list[int]]) -> list[int]:
    """The longest run of tokens every sequence starts with, leaving each at least one token of its own (the
    position whose logits score the first verbalizer token)."""
    shortest = min(map(len, sequences))
    length = 0
    while length < shortest - 1 and all(s[length] == sequences[0][length] for s in sequences):
        length += 1
    return sequences[0][:length]


def label_log_likelihoods(model, tokenizer, prompts: list[str], words: list[str], batch_size: int,
                          add_special_tokens: bool = True) -> np.ndarray:
    """[prompt, label] summed log-probability of each label's words after each prompt.

    What every prompt shares (the chat preamble, the instruction, few-shot demonstrations: most of a few-shot
    prompt) runs through the model once and its key/value cache is reused by every batch. Where every
    verbalizer is one token, one pass per prompt scores all labels from the last position's logits; otherwise
    each (prompt, label) pair is a row. Rows are left-padded after the shared part so every verbalizer ends
    its row: only the last positions' logits are computed (`logits_to_keep`), which keeps a 150k-word
    vocabulary affordable; positions are counted over real tokens, so padding changes nothing.
    """
    import torch  # heavy: model side only

    prompt_ids = tokenizer(prompts, add_special_tokens=add_special_tokens)["input_ids"]
    word_ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    if any(not ids for ids in word_ids):
        raise ModelError(f"prompting.verbalizers: {words} has an entry the tokenizer turns into no token")
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    longest = max(map(len, prompt_ids)) + max(map(len, word_ids))
    if limit and longest > limit:
        raise ModelError(f"prompting: a prompt of {longest} tokens exceeds the model's {limit} positions; lower "
                         f"prompting.max_text_tokens or prompting.few_shot_k")
    prefix = shared_prefix(prompt_ids)
    single_token = all(len(ids) == 1 for ids in word_ids)
    # a row: (prompt, label) and the tokens it feeds after the shared prefix; label None = all labels at once
    rows = ([(i, None, prompt_ids[i][len(prefix):]) for i in range(len(prompts))] if single_token else
            [(i, j, prompt_ids[i][len(prefix):] + word_ids[j]) for i in range(len(prompts)) for j in range(len(words))])
    rows.sort(key=lambda row: len(row[2]))
    keep = 1 if single_token else max(map(len, word_ids)) + 1
    takes_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
    scores = np.zeros((len(prompts), len(words)))
    first_tokens = torch.tensor([ids[0] for ids in word_ids])
    pad = tokenizer.pad_token_id
    model.eval()
    batches = range(0, len(rows), batch_size)
    with torch.inference_mode():
        prefix_cache = (model(input_ids=torch.tensor([prefix], device=model.device), use_cache=True).past_key_values
                        if prefix else None)
        for start in tqdm(batches, desc=f"prompting: {len(prompts)} prompts x {len(words)} labels", unit="batch",
                          disable=len(batches) < 10):
            batch = rows[start:start + batch_size]
            width = max(len(row[2]) for row in batch)
            input_ids = torch.tensor([[pad] * (width - len(s)) + s for _, _, s in batch])
            own = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for _, _, s in batch])
            positions = len(prefix) + (own.cumsum(-1) - 1).clamp(min=0)
            attention = torch.cat([torch.ones(len(batch), len(prefix), dtype=own.dtype), own], dim=1)
            extra = {"logits_to_keep": keep} if takes_keep else {}
            if prefix_cache is not None:
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(batch))
                extra |= {"past_key_values": cache, "use_cache": True}
            logits = model(input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device),
                           position_ids=positions.to(model.device), **extra).logits[:, -keep:].float()
            log_probs = torch.log_softmax(logits, dim=-1).cpu()
            for row, (i, j, _) in enumerate(batch):
                if j is None:
                    scores[i] = log_probs[row, -1, first_tokens].numpy()
                    continue
                n = len(word_ids[j])
                # logits at position t predict token t + 1: the last n + 1 kept positions predict the n words
                predicted = log_probs[row, keep - n - 1:keep - 1]
                scores[i, j] = float(predicted.gather(-1, torch.tensor(word_ids[j])[:, None]).sum())
    return scores


@dataclass
class PromptScores:
    """[text, label] scores of one prompting method: `raw` verbalizer log-likelihoods, `calibrated` the
    label log-probabilities divided by the content-free ones (None when prompting.calibration is none), and
    `scores`, the ones params choose (the prediction's argmax, a prompted teacher's logits)."""

    raw: np.ndarray
    calibrated: np.ndarray | None
    used: dict

    @property
    def scores(self) -> np.ndarray:
        return self.raw if self.calibrated is None else self.calibrated


def label_log_probabilities(scores: np.ndarray) -> np.ndarray:
    """Verbalizer log-likelihoods renormalized over the labels (a log-softmax per row)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def contextual_calibration(scores: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """log p(label | text) - log p_cf(label), p_cf the mean label probability over the content-free inputs:
    Zhao et al.'s W = diag(p_cf)^-1, b = 0, in log space (the argmax is the calibrated prediction)."""
    prior = np.exp(label_log_probabilities(content_free)).mean(axis=0)
    return label_log_probabilities(scores) - np.log(prior)


def prompt_scores(model, tokenizer, texts: list[str], train_rows: list[dict], params: Params, method: str,
                  ) -> PromptScores:
    """The [text, label] scores of `method` (zero_shot | few_shot), raw and calibrated, and what was used."""
    config, labels = params.prompting, params.data.labels
    chat = uses_chat_template(tokenizer, config)
    words = verbalizers(config, labels, chat)
    label_words = dict(zip(labels, words, strict=True))
    shots = demonstrations(train_rows, config.few_shot_k, params.seed, labels) if method == "few_shot" else []

    def score(batch: list[str]) -> np.ndarray:
        prompts = build_prompts(batch, config, tokenizer, shots, label_words, chat)
        return label_log_likelihoods(model, tokenizer, prompts, words, config.batch_size,
                                     add_special_tokens=not chat)

    raw = score(texts)
    calibrated, prior = None, {}
    if config.calibration == "contextual":
        content_free = score(list(CONTENT_FREE_TEXTS))
        calibrated = contextual_calibration(raw, content_free)
        mean = np.exp(label_log_probabilities(content_free)).mean(axis=0)
        prior = {label: round(float(p), 4) for label, p in zip(labels, mean, strict=True)}
    example = build_prompts(texts[:1], config, tokenizer, shots, label_words, chat)
    used = {"verbalizers": label_words, "demonstrations": [shot["id"] for shot in shots],
            "chat_template": chat, "calibration": config.calibration,
            "content_free_label_probabilities": prior or None, "example_prompt": example[0] if example else ""}
    return PromptScores(raw, calibrated, used)


def load_prompted_model(params: Params):
    """(causal LM, tokenizer) of model.name, refused with what to do when it is not a decoder."""
    from transformers import AutoModelForCausalLM  # heavy: model side only

    base = resolve_model(params.model.name)
    if backbone_of(base, params) != "decoder":
        raise ModelError(f"prompting: model.name {params.model.name} is not a decoder-only LM (prompting scores a "
                         f"causal LM's next words); use a decoder, or distill.teacher: trained")
    return AutoModelForCausalLM.from_pretrained(base, **load_kwargs(params, base)), load_tokenizer(base, params)


def demonstration_pool(rows: list[dict]) -> list[dict]:
    """The labeled rows as given: never augmentation's copies (they carry `origin_id`)."""
    return [row for row in rows if not row.get("origin_id") and row.get("label") is not None]
