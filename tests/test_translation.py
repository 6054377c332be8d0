"""Translation pieces: parallel-data adapters with clear errors, a BERT2BERT model warm-started from
an encoder that learns (a copy task on the tiny model), beam search in input order, BLEU and chrF."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from stages.corpora import DataError
from stages.translation import (
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

    from stages.modeling import training_arguments

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
