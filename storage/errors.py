"""What storage refuses with: every error is a ``ledger.errors.LedgerError``, so the API answers each as it
answers the ledger's own."""

from __future__ import annotations

from ledger.errors import LedgerError


class StorageError(LedgerError):
    """A request the store cannot answer (unknown village, index out of range...)."""


class NotFound(StorageError):
    pass
