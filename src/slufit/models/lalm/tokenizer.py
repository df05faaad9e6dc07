"""A small byte-level BPE tokenizer with Qwen2-Audio's special tokens and chat template.

Real LALMs bring their own tokenizer from the hub. The tiny default model and the
offline tests need one that is built here, from the corpus text, without any
download, and that behaves like Qwen2-Audio's: the same special tokens, the same
ChatML chat template (audio parts rendered as
`Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>`), left padding for generation.
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from slufit.errors import SlufitError

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
AUDIO = "<|AUDIO|>"
AUDIO_BOS = "<|audio_bos|>"
AUDIO_EOS = "<|audio_eos|>"
# Same order as Qwen2's added tokens after <|endoftext|>; ids here are 0..5.
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, AUDIO, AUDIO_BOS, AUDIO_EOS]

# Qwen2's pre-tokenization split (GPT-4 style): contractions, letters, single digits,
# punctuation runs, newlines, spaces.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2-Audio's chat template (the one its processor falls back to), verbatim in behaviour.
CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 2000, special_tokens: list[str] | None = None,
                    eos_token: str = IM_END, pad_token: str = ENDOFTEXT,
                    chat_template: str = CHAT_TEMPLATE) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` (offline) and wrap it like Qwen2-Audio's tokenizer.

    Every byte is in the vocabulary, so any text round-trips; `vocab_size` counts the
    256 bytes, the merges and the special tokens. Other model families pass their own
    special tokens (ids 0, 1, ... in this order), end and padding tokens and chat template.
    """
    special = list(special_tokens or SPECIAL_TOKENS)
    minimum = 256 + len(special)
    if vocab_size < minimum:
        raise SlufitError(f"vocab_size must be at least {minimum} (256 bytes + special tokens), got {vocab_size}")
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator((t for t in texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=eos_token,
        pad_token=pad_token,
        additional_special_tokens=[t for t in special if t != pad_token],
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    tokenizer.chat_template = chat_template
    return tokenizer
