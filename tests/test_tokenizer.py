"""The offline tokenizer: Qwen2-Audio's special tokens and chat template, byte-level round trip."""

import pytest
from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

from slufit.errors import SlufitError
from slufit.models.lalm.tokenizer import SPECIAL_TOKENS, build_tokenizer

TEXTS = ["wake me up at seven am", "what is the weather in paris", '{"scenario": "alarm", "action": "set"}'] * 10


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(TEXTS, vocab_size=400)


def test_special_tokens_are_single_ids(tokenizer):
    for token in SPECIAL_TOKENS:
        ids = tokenizer(f"a{token}b", add_special_tokens=False)["input_ids"]
        assert tokenizer.convert_tokens_to_ids(token) in ids
        assert len(ids) == 3, (token, ids)
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.padding_side == "left"


def test_any_text_round_trips(tokenizer):
    text = "Réveille-moi à 7h ☕ 日本 \t\n {\"x\": 1}"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_chat_template_matches_qwen2_audio_processor(tokenizer):
    """Rendered exactly as Qwen2AudioProcessor's own default template renders it."""
    messages = [{"role": "user", "content": [{"type": "audio", "audio": "a.wav"}, {"type": "text", "text": "what?"}]},
                {"role": "assistant", "content": "an alarm"},
                {"role": "user", "content": [{"type": "text", "text": "and this?"}]}]
    ours = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    processor = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer, chat_template=None)
    theirs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert ours == theirs
    assert ours == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nwhat?<|im_end|>\n"
                    "<|im_start|>assistant\nan alarm<|im_end|>\n"
                    "<|im_start|>user\nand this?<|im_end|>\n<|im_start|>assistant\n")


def test_vocab_size_limits(tokenizer):
    assert 256 + len(SPECIAL_TOKENS) < len(tokenizer) <= 400
    with pytest.raises(SlufitError, match="vocab_size"):
        build_tokenizer(TEXTS, vocab_size=100)
