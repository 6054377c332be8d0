"""Translation transfer building blocks: parallel data, a warm-started encoder-decoder, beam search,
and corpus BLEU / chrF (sacrebleu, the scores papers report).

Offline, the only pretrained weights at hand are an encoder, so the seq2seq model is warm-started
from it on both sides, as in Rothe et al. (2020): the decoder copies the encoder's layers, gains
randomly initialised cross-attention, and shares the vocabulary. Any AutoModelForSeq2SeqLM from the
hub or a local folder works the same way where one is available. Records are {id, source_text, target_text}.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transfer.core.errors import DataError
from transfer.core.locations import existing_file
from transfer.core.modeling import load_kwargs, load_tokenizer
from transfer.core.params import CleanParams, HubDataset, LocalFiles, Params
from transfer.data.corpora import canonical_frame
from transfer.data.tables import read_table
from transfer.tasks.base import Task


def read_parallel_table(path: str | Path, source_column: str, target_column: str, fmt: str = "auto") -> list[dict]:
    """CSV / TSV / JSONL / parquet with one column per language."""
    frame = read_table(path, fmt)
    missing = [c for c in (source_column, target_column) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(missing)} (columns: {', '.join(map(str, frame.columns))}); "
                        f"set source_column / target_column in params.yaml")
    ids = frame["id"].astype(str) if "id" in frame.columns else [str(i) for i in range(len(frame))]
    return [{"id": i, "source_text": s, "target_text": t}
            for i, s, t in zip(ids, frame[source_column], frame[target_column], strict=True)]


def read_aligned_files(source_path: str | Path, target_path: str | Path) -> list[dict]:
    """Two text files, one sentence per line, line i of one translating line i of the other."""
    sides = []
    for path in (source_path, target_path):
        sides.append(existing_file(path).read_text(encoding="utf-8-sig").splitlines())
    if len(sides[0]) != len(sides[1]):
        raise DataError(f"{source_path} has {len(sides[0])} lines but {target_path} has {len(sides[1])}; aligned "
                        f"files must have one translation per line (check for a missing or extra line break)")
    return [{"id": str(i + 1), "source_text": s, "target_text": t} for i, (s, t) in enumerate(zip(*sides, strict=True))]


def pair_problem(record: dict) -> str | None:
    """Why a pair cannot be trained on, or None."""
    for side in ("source_text", "target_text"):
        if not isinstance(record.get(side), str) or not record[side].strip():
            return f"empty_{side}"
    return None


def warm_started_seq2seq(encoder_name_or_path: str, tokenizer, **load_kwargs):
    """An EncoderDecoderModel with both halves initialised from one pretrained encoder (BERT2BERT)."""
    from transformers import EncoderDecoderModel  # heavy: model side only (data stages import this module)

    prefixed = {f"{side}_{key}": value for key, value in load_kwargs.items() for side in ("encoder", "decoder")}
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(encoder_name_or_path, encoder_name_or_path,
                                                                **prefixed)
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = start, end, tokenizer.pad_token_id
    return model


def load_seq2seq(name_or_path: str, tokenizer, **load_kwargs):
    """A seq2seq checkpoint as it is (a hub translation model, or one trained here), or BERT2BERT from an encoder."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM  # heavy: model side only

    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=load_kwargs.get("trust_remote_code", False))
    if config.is_encoder_decoder:
        return AutoModelForSeq2SeqLM.from_pretrained(name_or_path, **load_kwargs)
    return warm_started_seq2seq(name_or_path, tokenizer, **load_kwargs)


def encode_pairs(batch: dict[str, list], tokenizer, max_source_length: int, max_target_length: int) -> dict:
    """Model inputs from the source side and `labels` from the target side (padding comes later)."""
    encoded = tokenizer(batch["source_text"], truncation=True, max_length=max_source_length)
    encoded.pop("token_type_ids", None)  # encoder-decoder models take none
    encoded["labels"] = tokenizer(text_target=batch["target_text"], truncation=True,
                                  max_length=max_target_length)["input_ids"]
    return encoded


def translate(model, tokenizer, texts: list[str], *, num_beams: int = 4, max_new_tokens: int = 64,
              length_penalty: float = 1.0, batch_size: int = 32, max_source_length: int = 256) -> list[str]:
    """Beam-search translations, in the order of `texts` (batches are sorted by length internally)."""
    import torch  # heavy: model side only

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str] = [""] * len(texts)
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        inputs = tokenizer([texts[i] for i in chunk], truncation=True, max_length=max_source_length, padding=True,
                           return_tensors="pt").to(model.device)
        inputs.pop("token_type_ids", None)
        with torch.no_grad():
            generated = model.generate(**inputs, num_beams=num_beams, max_new_tokens=max_new_tokens,
                                       length_penalty=length_penalty)
        for i, text in zip(chunk, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
            out[i] = text.strip()
    return out


CHRF_BANDS = (80, 60, 40, 20)


def chrf_band(hypothesis: str, reference: str) -> str:
    """Sentence chrF in bands of 20 points, for the outcome plot (the stand-in for a confusion matrix)."""
    import sacrebleu  # only translation scoring needs it

    score = sacrebleu.sentence_chrf(hypothesis, [reference]).score
    return next((f"chrF >= {band}" for band in CHRF_BANDS if score >= band), f"chrF < {CHRF_BANDS[-1]}")


def translation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu defaults: 13a tokenization, chrF with n=6, beta=2)."""
    import sacrebleu  # only translation scoring needs it

    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    return {"bleu": round(bleu.score, 4), "chrf": round(chrf.score, 4), "sentences": len(references)}


def translation_frame(df: pd.DataFrame, spec: LocalFiles | HubDataset, origin: str, id_prefix: str) -> pd.DataFrame:
    """Parallel columns, where "translation.en" reads key `en` of a dict column (the WMT/OPUS layout)."""
    for key in (spec.source_column, spec.target_column):
        column, _, language = key.partition(".")
        if language and column in df.columns and key not in df.columns:
            df[key] = [None if cell is None else dict(cell).get(language) for cell in df[column]]
    frame = canonical_frame(df, {"source": spec.source_column, "target": spec.target_column}, origin, id_prefix)
    return frame.rename(columns={"source": "source_text", "target": "target_text"})


class Translation(Task):
    """Sequence-to-sequence translation: a seq2seq model (or BERT2BERT from an encoder), chrF and BLEU."""

    name = "translation"
    # chrF first: corpus BLEU is 0 for most weak systems on small test sets (no 4-gram matches) and then
    # cannot rank them, while chrF still does (the WMT metrics tasks also rank it above BLEU).
    metrics = {"chrf": "chrF", "bleu": "BLEU"}
    points = 1.0  # sacrebleu scores are percents
    text_field = "source_text"
    normalized_fields = ("source_text", "target_text")
    corpus_keys = ("source_column", "target_column")
    formats = ("aligned",)
    peft_task_type = "SEQ_2_SEQ_LM"
    pipeline_tag = "translation"
    skipped_stages = {
        "augment": "data passed through unchanged (no EDA, no classes to rebalance)",
        "distill": "distillation is implemented for classification (soft labels over classes); task translation "
                   "would need span-logit (QA) or sequence-level (translation) distillation",
    }

    def read_file(self, spec: LocalFiles, path: str | list[str], id_prefix: str) -> pd.DataFrame:
        if spec.format == "aligned":
            return pd.DataFrame(read_aligned_files(*path)).assign(id=lambda df: id_prefix + df["id"])
        return translation_frame(read_table(path, spec.format, spec.encoding), spec, str(path), id_prefix)

    def read_hub_split(self, dataset, spec: HubDataset, origin: str, id_prefix: str) -> pd.DataFrame:
        return translation_frame(dataset.to_pandas(), spec, origin, id_prefix)

    def unlabeled(self, row: dict) -> dict:
        return {"id": row["id"], "source_text": row["source_text"], "target_text": None}

    def reject_reason(self, row: dict, labels: set[str], params: CleanParams) -> str | None:
        text = row["source_text"]
        if not isinstance(text, str) or not text.strip():
            return "empty_source_text"
        if row["split"] != "unlabeled" and (problem := pair_problem(row)):
            return problem
        return self.length_reason(text, params)

    def tokenize(self, rows: list[dict], tokenizer, params: Params, split: str) -> dict:
        """Source-side inputs with the target side as `labels`; `origin_id` is the example id."""
        import datasets  # heavy: model side only (ingest and clean import this module too)

        config = params.translation
        pairs = datasets.Dataset.from_dict({"id": [r["id"] for r in rows], "origin_id": [r["id"] for r in rows],
                                            "source_text": [r["source_text"] for r in rows],
                                            "target_text": [r["target_text"] for r in rows]})

        def encode(batch: dict) -> dict:
            encoded = encode_pairs(batch, tokenizer, config.max_source_length, config.max_target_length)
            encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
            return encoded

        return {split: pairs.map(encode, batched=True, batch_size=1000, desc="tokenize pairs")}

    def input_columns(self, corpus) -> dict[str, str]:
        return {"source_text": getattr(corpus, "source_column", "source")}

    def predictor(self, model_dir, params: Params):
        """Beam-search translations with translation.*'s settings, as evaluate scores them."""
        config, tokenizer = params.translation, load_tokenizer(str(model_dir), params)
        model = load_seq2seq(str(model_dir), tokenizer, **load_kwargs(params, model_dir))

        def translated(rows: list[dict]) -> list[dict]:
            texts = translate(model, tokenizer, [row["source_text"] for row in rows], num_beams=config.num_beams,
                              max_new_tokens=config.max_new_tokens, length_penalty=config.length_penalty,
                              batch_size=params.evaluate.batch_size, max_source_length=config.max_source_length)
            return [{"translation": text} for text in texts]
        return translated

    def load_model(self, init: str, tokenizer, params: Params, **options):
        return load_seq2seq(init, tokenizer, **load_kwargs(params, init), **options)

    def collator(self, tokenizer, model):
        from transformers import DataCollatorForSeq2Seq  # heavy: model side only

        return DataCollatorForSeq2Seq(tokenizer, model=model)

    def score(self, model_dir, target, params: Params) -> tuple[dict, list[dict]]:
        config, test, tokenizer = params.translation, target["test"], load_tokenizer(str(model_dir), params)
        model = load_seq2seq(str(model_dir), tokenizer, **load_kwargs(params, model_dir))
        hypotheses = translate(model, tokenizer, test["source_text"], num_beams=config.num_beams,
                               max_new_tokens=config.max_new_tokens, length_penalty=config.length_penalty,
                               batch_size=params.evaluate.batch_size, max_source_length=config.max_source_length)
        rows = [{"id": i, "actual": "test sentences", "predicted": chrf_band(hyp, ref), "reference": ref,
                 "translation": hyp} for i, ref, hyp in zip(test["id"], test["target_text"], hypotheses, strict=True)]
        return translation_scores(hypotheses, test["target_text"]), sorted(rows, key=lambda r: r["id"])

    def resampled_score(self, rows: list[dict], params: Params):
        import sacrebleu  # only translation scoring needs it

        hypotheses, references = [row["translation"] for row in rows], [row["reference"] for row in rows]
        return lambda positions: sacrebleu.corpus_chrf([hypotheses[i] for i in positions],
                                                       [[references[i] for i in positions]]).score
