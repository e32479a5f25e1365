"""The one error hierarchy of the ledger library.

Every failure the library reports is a ``LedgerError``. Verification never returns a bool: it returns
``None`` or raises one of these, with a message that says exactly what mismatched.
"""

from __future__ import annotations

# The root and the errors keys raise are defined in keys (the bottom layer, which imports nothing of ledger).
from keys.errors import EncodingError, KeyFileError, LedgerError, SignatureError

__all__ = [
    "BadSignature", "CheckpointError", "EncodingError", "EntryError", "KeyFileError", "LedgerError", "MalformedEntry",
    "NotAuthorised", "ProofError", "Replay", "RuleViolation", "SignatureError", "VerificationError",
]


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof that does not verify, or a request for an impossible one."""


class CheckpointError(LedgerError):
    """A checkpoint or signed note that is malformed or not signed by a trusted key."""


class EntryError(LedgerError):
    """An entry the ledger refuses. ``field`` is the dotted path of the offending field, if one is to blame.

    ``code`` is a stable, machine-readable reason (``malformed``, ``signature``, ``unauthorised``,
    ``rule``, ``replay``, ``conflict``) that the API maps to an HTTP status and a problem type.
    """

    code = "refused"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.position: int | None = None  # the entry's place in the batch it came in, when it came in one


class MalformedEntry(EntryError):
    """The entry does not match the schema of its kind."""

    code = "malformed"

    def __init__(self, message: str, *, field: str | None = None, problems: dict[str, list[str]] | None = None):
        super().__init__(message, field=field)
        self.problems = problems or ({field: [message]} if field else {})


class BadSignature(EntryError):
    """A signature on the entry does not verify, or a required signature is missing."""

    code = "signature"


class NotAuthorised(EntryError):
    """The signing key may not append this entry at this point of the log."""

    code = "unauthorised"


class RuleViolation(EntryError):
    """The entry breaks a points rule or an accounting invariant (bounds, balance, unknown rule...)."""

    code = "rule"


class Replay(EntryError):
    """An entry whose id is already in the log."""

    code = "replay"


class VerificationError(LedgerError):
    """An audit failure, naming the first bad entry or checkpoint.

    ``index`` is the log index of the entry (or the size of the checkpoint) at fault, ``kind`` the entry
    kind when known. The cause is chained with ``raise ... from``.
    """

    def __init__(self, message: str, *, index: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.kind = kind
