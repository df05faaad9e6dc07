"""Large audio language models through transformers: one shared adapter (`adapter`), one module per family
(`qwen2_audio`, `qwen2_5_omni`, `voxtral`, `granite_speech`, `audio_flamingo3`, `qwen3_omni`,
`phi4_multimodal`), the literal dict of them (`families`), and what tests build tiny models with (`common`,
`tokenizer`, `testing`). Imports run one way: families -> family modules -> adapter."""
