"""What a real-size decoder costs on this machine's CPU: the paths the pipeline runs, on a model with the
published shape of Qwen2.5-0.5B (494M parameters) built from its config with random weights (no
download; the time of a forward/backward pass does not depend on the weights' values).

    .venv/bin/python bench/decoder_cpu.py            # writes bench/decoder_cpu.json

Per path, samples/s over a few timed steps after one warm-up step: classifier inference (evaluate,
compare), a LoRA training step on every linear layer (finetune with peft: lora), a full causal-LM
training step (pretrain_domain), and zero-shot prompting (three verbalizers scored per example). fp32,
as the pipeline trains on CPU. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForSequenceClassification

# Qwen2.5-0.5B's config.json (hub: Qwen/Qwen2.5-0.5B), without the weights.
QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1_000_000.0,
                  tie_word_embeddings=True, pad_token_id=151643)


def timed(step, steps: int) -> float:
    """Seconds per step: one warm-up step, then the mean of `steps`."""
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def classifier_paths(batch: int, length: int) -> dict:
    """Inference and a LoRA (all-linear) training step of the sequence classifier."""
    from peft import LoraConfig, TaskType, get_peft_model

    ids = torch.randint(1000, 100000, (batch, length))
    classifier = Qwen2ForSequenceClassification(Qwen2Config(num_labels=3, **QWEN25_05B)).eval()
    results = {"parameters": classifier.num_parameters()}
    with torch.inference_mode():
        seconds = timed(lambda: classifier(input_ids=ids), 3)
    results["classifier_inference"] = {"batch": batch, "tokens": length,
                                       "samples_per_second": round(batch / seconds, 2)}
    print(results["classifier_inference"], flush=True)
    lora = get_peft_model(classifier.train(), LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16,
                                                         target_modules="all-linear"))
    trainable = [p for p in lora.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-4)
    labels = torch.randint(0, 3, (batch,))

    def step():
        lora(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    seconds = timed(step, 2)
    results["lora_training_step"] = {"batch": batch, "tokens": length, "samples_per_second": round(batch / seconds, 2),
                                     "trainable_parameters": sum(p.numel() for p in trainable)}
    print(results["lora_training_step"], flush=True)
    return results


def causal_lm_paths(batch: int, block: int, prompt_length: int) -> dict:
    """A full causal-LM training step (continued pretraining), then zero-shot scoring of 3 verbalizers."""
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    blocks = torch.randint(1000, 100000, (4, block))

    def step():
        model(input_ids=blocks, labels=blocks).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    seconds = timed(step, 2)
    results = {"causal_lm_training_step": {"batch": 4, "tokens": block,
                                           "tokens_per_second": round(4 * block / seconds, 1)}}
    print(results["causal_lm_training_step"], flush=True)
    optimizer.state.clear()
    model.eval()
    prompts = torch.randint(1000, 100000, (3 * batch, prompt_length))  # one row per label
    with torch.inference_mode():
        seconds = timed(lambda: model(input_ids=prompts, logits_to_keep=3), 2)
    results["zero_shot_prompting"] = {"examples": batch, "labels": 3, "tokens": prompt_length,
                                      "samples_per_second": round(batch / seconds, 2)}
    print(results["zero_shot_prompting"], flush=True)
    return results


def main() -> None:
    torch.manual_seed(0)
    results: dict = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                 "processor": platform.processor() or platform.machine()},
                     "model": "Qwen2.5-0.5B shape, random weights, fp32"}
    results |= classifier_paths(batch=8, length=128)
    results |= causal_lm_paths(batch=8, block=256, prompt_length=136)
    Path("bench/decoder_cpu.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
