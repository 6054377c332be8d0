"""The domain-shift measures mean what they claim, on synthetic data with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from transformers import AutoModel, AutoTokenizer

from transfer.analysis.domain_metrics import (
    js_divergence,
    mean_pooled_embeddings,
    mmd_rbf,
    project_2d,
    proxy_a_distance,
    tokenizer_fit,
    vocabulary_overlap,
)


def gaussians(shift: float, n: int = 300, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)), rng.normal(size=(n, dim)) + shift / np.sqrt(dim)


def test_identical_distributions_are_close_and_shifted_ones_far():
    same, shifted = gaussians(0.0), gaussians(6.0)
    near, far = proxy_a_distance(*same, 0.3, seed=0), proxy_a_distance(*shifted, 0.3, seed=0)
    assert abs(near["proxy_a_distance"]) < 0.35 and 0.4 < near["domain_classifier_error"] < 0.6
    assert far["proxy_a_distance"] > 1.9
    assert abs(mmd_rbf(*same)["mmd2"]) < 0.01
    assert mmd_rbf(*shifted)["mmd2"] > 0.3


def test_pad_matches_the_bayes_error_of_two_gaussians():
    # Means 3 standard deviations apart: the best classifier errs Phi(-1.5) = 6.7% of the time.
    bayes_error = 0.5 * math.erfc(1.5 / math.sqrt(2))
    pad = proxy_a_distance(*gaussians(3.0, n=1000), 0.3, seed=0)["proxy_a_distance"]
    assert pad == pytest.approx(2 * (1 - 2 * bayes_error), abs=0.15)


def test_distances_grow_with_the_shift():
    pads = [proxy_a_distance(*gaussians(s), 0.3, seed=0)["proxy_a_distance"] for s in (0.0, 1.0, 2.0)]
    mmds = [mmd_rbf(*gaussians(s))["mmd2"] for s in (0.0, 1.0, 2.0)]
    assert pads == sorted(pads) and mmds == sorted(mmds)


def test_text_distances_on_shared_and_disjoint_vocabularies():
    medical = ["the dose caused nausea and headache", "side effects were mild nausea"]
    travel = ["flight delayed again at the gate", "lost luggage and rude crew"]
    assert vocabulary_overlap(medical, medical, top_k=10) == 1.0
    assert vocabulary_overlap(medical, travel, top_k=10) == 0.0  # "the", "and" are stop words
    assert js_divergence(medical, medical) == pytest.approx(0.0, abs=1e-12)
    assert 0.8 < js_divergence(medical, travel) <= 1.0  # only stop words shared


def test_tokenizer_fit_counts_split_words_and_unknown_tokens(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer_fit(["the cat sat"], tokenizer) == {"unk_rate": 0.0, "split_word_rate": 0.0,
                                                         "tokens_per_word": 1.0}
    fit = tokenizer_fit(["pharmacokinetics of ☃"], tokenizer)
    assert fit["unk_rate"] > 0 and fit["split_word_rate"] > 0 and fit["tokens_per_word"] > 1


def test_mean_pooling_ignores_padding(tiny_model):
    model, tokenizer = AutoModel.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)
    texts = ["short", "a much longer sentence that forces padding on the short one"]
    together = mean_pooled_embeddings(model, tokenizer, texts, max_length=32, batch_size=2)
    alone = mean_pooled_embeddings(model, tokenizer, texts[:1], max_length=32, batch_size=1)
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    assert project_2d(np.concatenate(gaussians(2.0)), "pca", seed=0).shape == (600, 2)


def test_the_encoder_half_of_a_seq2seq_model_embeds_text():
    """domain_shift on translation models embeds with the encoder half (fed by a BERT tokenizer here)."""
    from transformers import BartConfig, BartForConditionalGeneration

    from transfer.core.modeling import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("embedded:all-MiniLM-L6-v2"))
    config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32)
    encoder = BartForConditionalGeneration(config).get_encoder()
    embedded = mean_pooled_embeddings(encoder, tokenizer, ["a short one", "a somewhat longer text here"],
                                      max_length=16, batch_size=2)
    assert embedded.shape == (2, 16) and np.isfinite(embedded).all()
