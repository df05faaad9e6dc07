"""The adapter on a CUDA device in bf16 (skipped without one). Audio is kept in memory, so the
test needs neither soundfile nor files on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from slufit.data.example import Entity, Example
from slufit.models.lalm import adapter as lalm_adapter
from slufit.models.base import SLUItem
from slufit.models.lalm.adapter import LALMAdapter
from slufit.models.lalm.families import family_for
from slufit.models.registry import default_dtype, load_model
from slufit.models.lalm.testing import tiny_qwen2_audio, tiny_tokenizer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

EXAMPLE = Example(id="g1", locale="en-US", text="wake me up at seven am", scenario="alarm", action="set",
                  intent="alarm_set", entities=(Entity("time", "seven am"),))


@pytest.fixture
def waves(monkeypatch):
    rng = np.random.default_rng(0)
    store = {f"/mem/clip{i}.wav": (0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32)
             for i, s in enumerate([1.2, 3.1])}
    monkeypatch.setattr(qwen2_audio, "load_wave", lambda path: store[str(path)])
    return [Path(p) for p in store]


def test_bf16_on_cuda_cached_loss_and_batched_generation(waves, tmp_path):
    assert default_dtype("cuda") == torch.bfloat16 and default_dtype("cpu") == torch.float32
    tokenizer = tiny_tokenizer()
    model, processor = tiny_qwen2_audio(tokenizer)
    model.save_pretrained(tmp_path / "hf")
    processor.save_pretrained(tmp_path / "hf")
    adapter = load_model(tmp_path / "hf", device="cuda")
    assert isinstance(adapter, LALMAdapter)
    assert {p.dtype for p in adapter.module.parameters()} == {torch.bfloat16}
    assert next(adapter.module.parameters()).device.type == "cuda"
    speech = [SLUItem(EXAMPLE, "speech", audio_path=p) for p in waves]
    batch = {k: v.cuda() for k, v in adapter.collate(speech).items()}
    adapter.set_trainable(audio_encoder=False, projector=True, language_model=True)
    cache = adapter.module.cache
    adapter.module.cache = None
    reference = adapter.loss(batch).item()
    adapter.module.cache = cache
    cached = [adapter.loss(batch).item() for _ in range(2)]
    assert cache.hits == 2 and cache.misses == 2
    assert cached == pytest.approx([reference] * 2, abs=2e-2)
    light = {k: v.cuda() for k, v in adapter.collate(speech).items()}  # all cached: no audio read
    assert "input_features" not in light
    assert adapter.loss(light).item() == pytest.approx(reference, abs=2e-2)
    adapter.loss(light).backward()
    outputs = adapter.generate(speech, num_beams=2, max_new_tokens=5)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    text = adapter.generate([SLUItem(EXAMPLE, "text")], max_new_tokens=5)
    assert len(text) == 1
