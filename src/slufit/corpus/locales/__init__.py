"""Per-locale templates and fillers of the embedded corpus (parallel across locales)."""
