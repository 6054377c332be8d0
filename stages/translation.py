"""Translation transfer building blocks: parallel data, a warm-started encoder-decoder, beam search,
and corpus BLEU / chrF (sacrebleu, the scores papers report).

Offline, the only pretrained weights at hand are an encoder, so the seq2seq model is warm-started
from it on both sides, as in Rothe et al. (2020): the decoder copies the encoder's layers, gains
randomly initialised cross-attention, and shares the vocabulary. Any AutoModelForSeq2SeqLM from the
hub or a local folder works the same way where one is available. Records are {id, source_text, target_text}.
"""

from __future__ import annotations

from pathlib import Path

from stages.errors import DataError
from stages.locations import existing_file
from stages.tables import read_table


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
    from transformers import EncoderDecoderModel

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
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

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
    import torch

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
    import sacrebleu

    score = sacrebleu.sentence_chrf(hypothesis, [reference]).score
    return next((f"chrF >= {band}" for band in CHRF_BANDS if score >= band), f"chrF < {CHRF_BANDS[-1]}")


def translation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu defaults: 13a tokenization, chrF with n=6, beta=2)."""
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    return {"bleu": round(bleu.score, 4), "chrf": round(chrf.score, 4), "sentences": len(references)}
