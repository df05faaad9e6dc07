"""User-facing errors. The CLI prints these as one readable line and exits 2;
anything else is a bug and keeps its traceback."""


class SlufitError(Exception):
    """A problem with the user's input or environment, with a readable message."""


class DataError(SlufitError):
    """Bad input data. The message starts with `FILE:LINE:` (or `FILE:`) when known."""
