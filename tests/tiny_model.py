"""A tiny BERT built from a config, with the real MiniLM tokenizer: the whole DAG runs in seconds."""

from __future__ import annotations

from pathlib import Path


def build_tiny_bert(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from transfer.core.modeling import resolve_model

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("embedded:all-MiniLM-L6-v2"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
