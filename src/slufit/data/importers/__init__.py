"""Dataset importers: one module per format, each turning its files into canonical examples.

Every module exposes `add_arguments(parser)` (its own options) and
`convert(src, args, out_dir) -> common.Imported`; `slufit data import` adds the
common options (--out, --audio-root, --require-audio) and writes the result.
"""

# format name -> (module, one-line help). A literal dict: every supported format at a glance.
IMPORTERS: dict[str, tuple[str, str]] = {
    "slurp": ("slufit.data.importers.slurp", "SLURP release JSONL (train.jsonl, devel.jsonl, test.jsonl)"),
    "massive": ("slufit.data.importers.massive", "MASSIVE JSONL (one file per locale, all partitions; text only)"),
    "speech-massive": ("slufit.data.importers.speech_massive",
                       "Speech-MASSIVE: a Hugging Face dataset folder (save_to_disk) or parquet files, with audio"),
    "jsonl": ("slufit.data.importers.generic", "your own JSONL; field names set by options (--text-field ...)"),
    "csv": ("slufit.data.importers.generic", "your own CSV with a header row; field names set by options"),
}
