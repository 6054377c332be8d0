"""Translation pieces: parallel-data adapters with clear errors, a BERT2BERT model warm-started from
an encoder that learns (a copy task on the tiny model), beam search in input order, BLEU and chrF."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from transfer.core.errors import DataError
from transfer.tasks.translation import (
    encode_pairs,
    pair_problem,
    read_aligned_files,
    read_parallel_table,
    translate,
    translation_scores,
    warm_started_seq2seq,
)

WORDS = ["pain", "dose", "tablet", "doctor", "fever", "sleep", "water", "morning", "night", "heart"]


def test_parallel_tables_and_aligned_files(tmp_path):
    table = pd.DataFrame({"en": ["the dose", "at night"], "de": ["die Dosis", "nachts"]})
    table.to_csv(tmp_path / "p.csv", index=False)
    assert read_parallel_table(tmp_path / "p.csv", "en", "de")[1] == {"id": "1", "source_text": "at night",
                                                                     "target_text": "nachts"}
    with pytest.raises(DataError, match="no column.*fr"):
        read_parallel_table(tmp_path / "p.csv", "en", "fr")
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    with pytest.raises(DataError, match="a.en has 3 lines but .*a.de has 2"):
        read_aligned_files(tmp_path / "a.en", tmp_path / "a.de")
    (tmp_path / "a.de").write_text("eins\nzwei\ndrei\n")
    assert read_aligned_files(tmp_path / "a.en", tmp_path / "a.de")[2]["target_text"] == "drei"
    assert pair_problem({"source_text": "x", "target_text": " "}) == "empty_target_text"


def test_bleu_and_chrf_are_sacrebleus_corpus_scores():
    refs = ["the patient took the tablet", "she slept at night"]
    assert translation_scores(refs, refs)["bleu"] == 100.0 and translation_scores(refs, refs)["chrf"] == 100.0
    partial = translation_scores(["the patient took a tablet", "she slept"], refs)
    assert 0 < partial["bleu"] < 100 and 0 < partial["chrf"] < 100


def test_a_warm_started_seq2seq_model_learns_to_copy(tiny_model, tmp_path):
    import datasets
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq, Trainer

    from transfer.core.modeling import training_arguments

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = warm_started_seq2seq(str(tiny_model), tokenizer)
    assert model.config.decoder.is_decoder and model.config.decoder.add_cross_attention
    rng = random.Random(0)
    sentences = [" ".join(rng.choices(WORDS, k=3)) for _ in range(160)]
    pairs = datasets.Dataset.from_dict({"source_text": sentences, "target_text": sentences})
    train = pairs.map(lambda b: encode_pairs(b, tokenizer, 16, 16), batched=True, remove_columns=pairs.column_names)
    test = [" ".join(rng.choices(WORDS, k=3)) for _ in range(12)]
    before = translation_scores(translate(model, tokenizer, test, num_beams=2, max_new_tokens=8), test)
    args = training_arguments(tmp_path, seed=0, epochs=25, learning_rate=3e-3, batch_size=16, eval_each_epoch=False,
                              group_by_length=False)
    Trainer(model=model, args=args, train_dataset=train,
            data_collator=DataCollatorForSeq2Seq(tokenizer, model=model)).train()
    hypotheses = translate(model, tokenizer, test, num_beams=2, max_new_tokens=8)
    after = translation_scores(hypotheses, test)
    assert after["chrf"] > before["chrf"] + 30, (before, after, hypotheses[:3])


def test_a_seq2seq_checkpoint_is_used_as_it_is(tmp_path):
    """A hub / local seq2seq model (here a tiny BART built from a config) loads as itself, not warm-started."""
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from transfer.core.modeling import resolve_model
    from transfer.tasks.translation import load_seq2seq

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("embedded:all-MiniLM-L6-v2"))
    config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                        eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.cls_token_id)
    BartForConditionalGeneration(config).save_pretrained(tmp_path / "bart")
    model = load_seq2seq(str(tmp_path / "bart"), tokenizer, use_safetensors=True)
    assert type(model).__name__ == "BartForConditionalGeneration"
    assert len(translate(model, tokenizer, ["the dose", "at night today"], num_beams=2, max_new_tokens=4)) == 2
