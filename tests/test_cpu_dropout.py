"""numpy dropout masks: the same law as torch's, reproducible from torch's seed, and routed through the
attention of every model type it claims (transfer/training/cpu_dropout.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from transfer.training import cpu_dropout
from transfer.training.cpu_dropout import (
    ATTENTION_MODEL_TYPES,
    NumpyDropout,
    configure_dropout,
    numpy_dropout,
    use_numpy_dropout,
)


def test_masks_keep_one_minus_p_scaled_and_carry_the_gradient():
    torch.manual_seed(0)
    inputs = torch.ones(200_000, requires_grad=True)
    outputs = numpy_dropout(inputs, 0.1)
    dropped = (outputs == 0).float().mean().item()
    assert dropped == pytest.approx(0.1, abs=0.003)
    assert torch.allclose(outputs[outputs != 0], torch.tensor(1 / 0.9))
    outputs.sum().backward()
    assert torch.equal(inputs.grad, outputs.detach())  # d(x * mask)/dx = mask, x = 1


def test_masks_follow_torch_seed():
    torch.manual_seed(7)
    first, second = numpy_dropout(torch.ones(1000), 0.5), numpy_dropout(torch.ones(1000), 0.5)
    torch.manual_seed(7)
    assert torch.equal(numpy_dropout(torch.ones(1000), 0.5), first)
    assert not torch.equal(first, second)


def tiny_classifier(model_type: str, attention_dropout: float, hidden_dropout: float = 0.0):
    config = AutoConfig.for_model(model_type, vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                  hidden_dropout_prob=hidden_dropout, attention_probs_dropout_prob=attention_dropout,
                                  num_labels=3)
    if model_type == "electra":
        config.embedding_size = 32
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")


@pytest.mark.parametrize("model_type", ATTENTION_MODEL_TYPES)
def test_attention_routes_through_numpy_dropout_with_eager_maths(model_type, monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_dropout, "numpy_dropout", lambda x, p: calls.append(p) or x * (1 / (1 - p)))
    model = tiny_classifier(model_type, attention_dropout=1e-9)
    inputs = {"input_ids": torch.tensor([[5, 17, 33, 8, 90, 2], [5, 44, 2, 0, 0, 0]]),
              "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])}
    reference = model.eval()(**inputs).logits

    use_numpy_dropout(model)
    assert model.config._attn_implementation == cpu_dropout.ATTENTION_NAME
    assert not any(type(m) is nn.Dropout for m in model.modules())
    model.eval()(**inputs)
    assert calls == []  # evaluation stays on transformers' SDPA path
    training = model.train()(**inputs).logits
    assert calls == [1e-9] * model.config.num_hidden_layers  # hidden dropouts are 0: only attention
    # Padding masked the same way as SDPA does: the padded row's logits agree too.
    assert torch.allclose(training, reference, atol=1e-5)


def test_dropout_changes_training_outputs_reproducibly():
    model = tiny_classifier("bert", attention_dropout=0.5, hidden_dropout=0.5)
    use_numpy_dropout(model)
    inputs = {"input_ids": torch.tensor([[5, 17, 33, 8, 90, 2]])}
    evaluation = model.eval()(**inputs).logits
    model.train()
    torch.manual_seed(3)
    first = model(**inputs).logits
    torch.manual_seed(3)
    assert torch.equal(model(**inputs).logits, first)
    assert not torch.allclose(first, evaluation)


def test_configure_dropout_follows_params_and_device():
    from transfer.core.params import PARAMS_FILE, load_params

    defaults = load_params(PARAMS_FILE)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    cases = (("torch", cpu, nn.Dropout), ("numpy", cpu, NumpyDropout), ("numpy", gpu, nn.Dropout))
    for masks, device, expected in cases:
        params = defaults.model_copy(update={"model": defaults.model.model_copy(update={"cpu_dropout_masks": masks})})
        model = tiny_classifier("bert", attention_dropout=0.1)
        configure_dropout(model, params, device)
        assert {type(m) for m in model.modules() if isinstance(m, nn.Dropout)} == {expected}


def test_bert2bert_decoder_keeps_its_causal_and_cross_attention_masks():
    """The warm-started translation model: a causal BERT decoder with cross-attention, padded on both sides."""
    from transformers import BertConfig, EncoderDecoderConfig, EncoderDecoderModel

    sizes = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=1e-9)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        BertConfig(**sizes), BertConfig(**sizes, is_decoder=True, add_cross_attention=True))
    torch.manual_seed(0)
    model = EncoderDecoderModel(config)
    inputs = {"input_ids": torch.tensor([[5, 17, 33, 8, 90, 2], [5, 44, 2, 0, 0, 0]]),
              "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]),
              "decoder_input_ids": torch.tensor([[101, 7, 9, 11], [101, 7, 0, 0]]),
              "decoder_attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])}
    reference = model.eval()(**inputs).logits
    use_numpy_dropout(model)
    assert model.decoder.config._attn_implementation == cpu_dropout.ATTENTION_NAME
    assert torch.allclose(model.train()(**inputs).logits, reference, atol=1e-5)
