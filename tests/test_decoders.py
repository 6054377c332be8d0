"""Decoder LLMs as backbones, on tiny random-weight Llama- and GPT-2-style models built from configs:
architecture read from the config, a pad token where the tokenizer has none, causal continued pretraining
with the forgetting figure, the decoder classifier (last non-pad token) and LoRA on every linear layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, BertConfig, T5Config

from tests.conftest import shipped_params, synthetic_rows
from tests.tiny_model import build_tiny_decoder
from transfer.core.modeling import backbone_kind, load_tokenizer
from transfer.core.params import parse_params
from transfer.tasks.classification import load_classifier
from transfer.tasks.registry import get_task
from transfer.training.causal_pretraining import adapt_causal, pack_blocks
from transfer.training.checkpoints import ResumableRun
from transfer.training.levers import adjust_priors
from transfer.training.strategies import apply_lora, lora_targets


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny_decoder(request, tmp_path_factory) -> Path:
    return build_tiny_decoder(tmp_path_factory.mktemp(f"tiny-{request.param}"), request.param)


def test_backbone_is_read_from_the_config_not_the_name(tiny_decoder, tiny_model):
    assert backbone_kind(AutoConfig.from_pretrained(tiny_decoder)) == "decoder"
    assert backbone_kind(AutoConfig.from_pretrained(tiny_model)) == "encoder"
    assert backbone_kind(BertConfig()) == "encoder"  # BERT also has a causal-LM class: still an encoder
    assert backbone_kind(T5Config()) == "encoder-decoder"


def test_a_tokenizer_without_pad_token_pads_with_end_of_text(tiny_decoder):
    tokenizer = load_tokenizer(str(tiny_decoder), shipped_params())
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    batch = tokenizer(["great", "awful and terrible pain"], padding=True)
    assert len(batch["input_ids"][0]) == len(batch["input_ids"][1])


def test_the_decoder_classifier_pools_the_last_real_token(tiny_decoder):
    params = shipped_params()
    model = load_classifier(str(tiny_decoder), params).eval()
    tokenizer = load_tokenizer(str(tiny_decoder), params)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    alone = tokenizer(["great wonderful"], return_tensors="pt")
    padded = tokenizer(["great wonderful", "awful terrible pain sick worst horrible"], padding=True,
                       return_tensors="pt")
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1]
    with torch.no_grad():
        torch.testing.assert_close(model(**padded).logits[0], model(**alone).logits[0], atol=1e-5, rtol=1e-4)


def test_lora_auto_adapts_every_linear_projection_of_a_decoder_and_trains_the_head(tiny_decoder, tiny_model):
    params = shipped_params()
    model = apply_lora(load_classifier(str(tiny_decoder), params), 4, 8, 0.0, "auto")
    adapted = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if ".lora_A" in name}
    expected = ({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
                if "llama" in tiny_decoder.name else {"c_attn", "c_proj", "c_fc"})
    assert adapted == expected
    trainable = [name for name, p in model.named_parameters() if p.requires_grad and "lora_" not in name]
    assert trainable and all("score" in name for name in trainable)
    assert lora_targets(AutoConfig.from_pretrained(tiny_model), "auto") is None  # peft's choice: query/value
    assert lora_targets(AutoConfig.from_pretrained(tiny_model), ["query"]) == ["query"]


def test_logit_adjustment_is_recorded_as_skipped_on_a_bias_free_decoder_head(tiny_decoder):
    params = shipped_params()
    model = load_classifier(str(tiny_decoder), params)
    report = adjust_priors(model, load_tokenizer(str(tiny_decoder), params), task=get_task("classification"),
                           params=params, target=None)
    assert "no bias" in report["logit_adjustment"]["skipped"]


def test_pack_blocks_keeps_every_token_and_the_last_short_block(tiny_decoder):
    tokenizer = load_tokenizer(str(tiny_decoder), shipped_params())
    texts = [row["text"] for row in synthetic_rows("target", 20, 0)]
    blocks = pack_blocks(texts, tokenizer, block_size=16)
    per_text = [len(ids) + 1 for ids in tokenizer(texts)["input_ids"]]  # + the end-of-text token
    lengths = [len(block) for block in blocks["input_ids"]]
    total = sum(per_text)
    dropped = 1 if total % 16 == 1 else 0  # a lone last token (the final end-of-text) predicts nothing
    assert sum(lengths) == total - dropped
    assert set(lengths[:-1]) == {16} and 1 < lengths[-1] <= 16
    assert blocks["labels"] == blocks["input_ids"]
    assert sum(ids.count(tokenizer.eos_token_id) for ids in blocks["input_ids"]) == len(texts) - dropped


def test_causal_continued_pretraining_lowers_target_perplexity_and_reports_forgetting(tiny_decoder, tmp_path):
    raw = shipped_params().model_dump(mode="json")
    raw["pretrain_domain"].update(max_length=32, epochs=3.0, batch_size=8, learning_rate=3e-3)
    params = parse_params(raw)
    texts = [row["text"] for row in synthetic_rows("target", 60, 0)]
    general = [row["text"] for row in synthetic_rows("source", 20, 1)]
    out = tmp_path / "domain"
    run = ResumableRun("models/domain", {"test": "x"}, root=tmp_path / "checkpoints")
    metrics = adapt_causal(params, str(tiny_decoder), texts, general, out, run, tmp_path / "curves.csv")
    assert metrics["objective"] == "causal_lm" and metrics["heldout_texts"] == 9
    assert metrics["after"]["loss"] < metrics["before"]["loss"] - 0.5
    assert metrics["after"]["perplexity"] < metrics["before"]["perplexity"]
    forgetting = metrics["forgetting"]
    assert forgetting["texts"] == 20
    assert forgetting["loss_increase"] == pytest.approx(forgetting["after"]["loss"] - forgetting["before"]["loss"],
                                                        abs=1e-3)
    reloaded = AutoModelForCausalLM.from_pretrained(out)  # saved with its LM head: prompting can start from it
    assert reloaded.get_output_embeddings() is not None
    assert load_tokenizer(str(out), params).pad_token is not None
    assert (tmp_path / "curves.csv").read_text().count("\n") > 1


def test_tasks_without_a_decoder_path_refuse_a_decoder_with_what_to_use(tiny_decoder):
    import yaml

    from tests.conftest import ROOT
    from transfer.core.errors import ParamsError
    from transfer.tasks.registry import task_for

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"]["name"] = str(tiny_decoder)
    assert task_for(parse_params(raw)).name == "classification"
    raw["task"] = "translation"
    with pytest.raises(ParamsError) as error:
        task_for(parse_params(raw))
    assert f"model.name: {tiny_decoder} is a decoder-only LM, and task translation has no decoder path" in str(
        error.value)
    assert "task: classification for a decoder" in str(error.value)


@pytest.mark.parametrize("words", [[" negative", " positive and happy"], [" great", " was", " and"]],
                         ids=["multi-token", "one-token"])
def test_label_log_likelihoods_equal_the_unpadded_sum_over_the_verbalizer(tiny_decoder, words):
    """The shared prefix's cache, the left padding after it and the one-pass scoring of one-token labels
    change nothing: each score is the plain forward pass's sum over the verbalizer."""
    from transfer.tasks.prompting import label_log_likelihoods

    params = shipped_params()
    model = AutoModelForCausalLM.from_pretrained(tiny_decoder).eval()
    tokenizer = load_tokenizer(str(tiny_decoder), params)
    if words[0] == " great":
        assert all(len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1 for w in words)
    demonstrations = "Text: fine and well\nSentiment: positive\n\nText: it hurt\nSentiment: negative\n\n"
    for prompts in (["Text: great\nSentiment:", "Text: awful terrible pain and worst\nSentiment:"],
                    [demonstrations + "Text: great\nSentiment:",
                     demonstrations + "Text: awful terrible pain and worst\nSentiment:",
                     demonstrations + "Text: so-so\nSentiment:"]):
        scores = label_log_likelihoods(model, tokenizer, prompts, words, batch_size=3)
        for i, prompt in enumerate(prompts):
            for j, word in enumerate(words):
                context = tokenizer(prompt)["input_ids"]
                continuation = tokenizer(word, add_special_tokens=False)["input_ids"]
                with torch.no_grad():
                    logits = model(input_ids=torch.tensor([context + continuation])).logits[0]
                log_probs = torch.log_softmax(logits, dim=-1)
                expected = sum(float(log_probs[len(context) - 1 + t, token]) for t, token in enumerate(continuation))
                assert scores[i, j] == pytest.approx(expected, abs=1e-4)


def test_few_shot_demonstrations_take_the_classes_in_turn_and_follow_the_seed():
    from transfer.core.errors import ModelError
    from transfer.tasks.prompting import demonstrations

    rows = synthetic_rows("target", 30, 0)
    labels = ["negative", "neutral", "positive"]
    shots = demonstrations(rows, 4, 42, labels)
    assert len(shots) == 4 and {shot["label"] for shot in shots} == set(labels)
    assert shots == demonstrations(list(reversed(rows)), 4, 42, labels)  # the draw ignores file order
    assert shots != demonstrations(rows, 4, 43, labels)
    with pytest.raises(ModelError, match="few_shot_k"):
        demonstrations(rows[:3], 4, 42, labels)


def test_gradient_checkpointing_recomputes_to_the_same_gradients_with_torch_dropout_masks(tiny_decoder):
    from transfer.training.cpu_dropout import configure_dropout

    raw = shipped_params().model_dump(mode="json")
    raw["model"]["gradient_checkpointing"] = True
    params = parse_params(raw)
    gradients = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_decoder)
        model.config.attention_dropout = 0.0
        model.train()
        if checkpointing:
            configure_dropout(model, params, torch.device("cpu"))
            assert model.is_gradient_checkpointing
        batch = torch.tensor([[5, 6, 7, 8, 9, 10]])
        model(input_ids=batch, labels=batch).loss.backward()
        gradients.append(model.model.embed_tokens.weight.grad if hasattr(model, "model")
                         else model.transformer.wte.weight.grad)
    torch.testing.assert_close(gradients[0], gradients[1])


def test_quantization_is_refused_in_one_line_on_cpu_and_without_lora():
    from transfer.core.errors import ParamsError
    from transfer.training.quantization import quantized_loading

    raw = shipped_params().model_dump(mode="json")
    raw["model"]["quantization"] = "4bit"
    with pytest.raises(ParamsError, match="set finetune.peft: lora"):
        parse_params(raw)
    raw["finetune"]["peft"] = "lora"
    params = parse_params(raw)
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs 4-bit loading")
    with pytest.raises(ParamsError) as error:
        quantized_loading(params)
    assert "\n" not in str(error.value) and "needs a CUDA GPU" in str(error.value)
