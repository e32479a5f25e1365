"""The root of the one error hierarchy, and the errors of keys.

``keys`` is the bottom layer: it imports nothing of ``ledger``, so the hierarchy starts here and
``ledger.errors`` builds on it (and re-exports these names). Every failure villageledger's libraries report
is a ``LedgerError``; verification raises one of these and never returns a bool.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger library and its keys raise."""


class EncodingError(LedgerError):
    """Bytes that are not what the format requires (bad JSON, non-canonical, bad base64, bad note)."""


class SignatureError(LedgerError):
    """A signature that does not verify under the key it names."""


class KeyFileError(LedgerError):
    """A private key file (or PEM text) that cannot be read, decrypted, or is not an Ed25519 key."""
