"""Errors the spool raises, kept apart so callers can import them without the SQLite layer.

Error tree::

    SpoolError
     ├── SpoolFullError    the byte budget is reached and the policy is `block`
     └── SpoolSchemaError  the file was written by a newer eventpipe (unknown schema version),
          │                or this SQLite lacks the JSON functions the spool needs
          └── SpoolVersionError  the schema version is one this code does not know
"""

from __future__ import annotations


class SpoolError(Exception):
    """Base class for spool failures."""


class SpoolFullError(SpoolError):
    """The byte budget is reached and `when_full="block"`.

    Nothing of the failed append was stored. The caller stops reading the watch and retries
    later; retention (or a sink catching up) frees pages that the next append reuses.
    """

    def __init__(self, message: str, *, batch_too_large: bool = False,
                 retry_smaller: bool = False) -> None:
        super().__init__(message)
        self.batch_too_large = batch_too_large
        """True when even an empty spool could not hold this batch: split it or give up."""
        self.retry_smaller = retry_smaller
        """True when the disk has room for a smaller batch now, not for this one: split it
        (and wait as for any full spool once a single event does not fit)."""


class SpoolSchemaError(SpoolError):
    """The spool file carries a schema version this code does not know, or the SQLite library
    lacks what the schema needs (the JSON functions, built in since 3.38)."""


class SpoolVersionError(SpoolSchemaError):
    """The spool file carries a schema version this code does not know (a newer eventpipe
    wrote it); nothing was changed in the file."""
