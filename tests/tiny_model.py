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


# Enough text for a byte-level BPE to learn the words the test corpora use (conftest.WORDS, the frames).
TOKENIZER_TEXT = [
    "the flight was great and wonderful #travel", "this medication was awful , side effects terrible .",
    "love excellent happy fantastic best helped", "hate worst horrible pain useless sick",
    "okay average some normal usual plain maybe moderate", "source target review tweet airline",
]


def build_tiny_decoder(folder: Path, family: str = "llama") -> Path:
    """A tiny random-weight causal LM (`llama`: rotary, RMSNorm, gated MLP, grouped-query attention;
    `gpt2`: learned positions, LayerNorm, fused qkv) with a byte-level BPE tokenizer trained here. Like
    the real ones, the tokenizer has an end-of-text token and no pad token."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TOKENIZER_TEXT * 4, vocab_size=400, min_frequency=1,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", model_max_length=512)
    size = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=512, **size))
    elif family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=512, **size))
    else:
        raise ValueError(f"unknown decoder family {family!r} (llama, gpt2)")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
