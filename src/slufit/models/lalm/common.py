"""Pieces several model families share: a decoder body over named audio-feature keys, and the tiny
random-weight test tokenizer with a family's own special tokens and chat template.

Families import this and slufit.models.lalm.adapter; nothing here imports a family.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def body_for(*feature_keys: str) -> Callable[[nn.Module, dict, torch.Tensor | None], torch.Tensor]:
    """The decoder forward of a `...ForConditionalGeneration` whose `.model` takes `input_ids` and the given
    audio-feature keyword arguments, or `inputs_embeds` (already merged) instead."""

    def body(model: nn.Module, batch: dict, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
        if inputs_embeds is not None:
            out = model.model(inputs_embeds=inputs_embeds, attention_mask=batch["attention_mask"], use_cache=False)
        else:
            features = {k: batch.get(k) for k in feature_keys}
            out = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False,
                              **features)
        return out.last_hidden_state

    return body


def text_sizes(hidden: int, layers: int, vocab: int, heads: int = 4, kv_heads: int = 2) -> dict:
    """Decoder sizes of a tiny test model (Llama/Qwen-style config keys)."""
    return dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096)


def family_tokenizer(texts, special_tokens: list[str], eos_token: str, pad_token: str, chat_template: str,
                     vocab_size: int = 1000):
    """A byte-level BPE trained offline on `texts` and the prompt's fixed parts, with a family's special
    tokens (ids 0, 1, ... in the order given), end and padding tokens and chat template."""
    from slufit.models.lalm.testing import DEFAULT_TEXTS
    from slufit.models.lalm.tokenizer import build_tokenizer
    from slufit.target import instruction

    fixed = [instruction(False), instruction(True), "Transcript: ", "Write down what the user said."]
    return build_tokenizer(list(texts or []) + (DEFAULT_TEXTS + fixed) * 4, vocab_size=vocab_size,
                           special_tokens=special_tokens, eos_token=eos_token, pad_token=pad_token,
                           chat_template=chat_template)


def chatml_template(audio: str, system: str | None = "You are a helpful assistant.") -> str:
    """A ChatML chat template (Qwen-style LMs) that renders an audio part as `audio`, before the text. (Real newlines:
    a backslash-n outside a Jinja string literal is written out as the two characters; the hub templates'
    tests caught that.)"""
    head = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\n" + system + "<|im_end|>\n{% endif %}"
            if system else "")
    return (
        head
        + "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for content in message['content'] %}"
        "{% if content['type'] == 'audio' %}" + audio + "{% elif content['type'] == 'text' %}{{ content['text'] }}"
        "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
