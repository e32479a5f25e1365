"""Keys: Ed25519 signing keys, encrypted key files, signature verification, and signed-note key names.

This package is the only place outside ``cryptography`` itself that imports ``cryptography.hazmat``;
everything else signs with ``SigningKey.sign`` and checks with ``verify_signature`` or
``NoteVerifier.verify``, which raise ``keys.errors.SignatureError`` and never return a bool. It imports nothing of ``ledger``: the
root of the one error hierarchy (``errors``) and strict base64 (``encoding``) live here, and ``ledger`` builds on them.
"""

from __future__ import annotations

from ._ed25519 import (
    SigningKey,
    load_private_key,
    require_member_key,
    save_private_key,
    verify_signature,
)
from ._note_keys import (
    ALG_COSIGNATURE_V1,
    NoteVerifier,
    cosignature_time,
    cosigned_message,
    key_name_problem,
    note_key_hash,
    parse_verifier_key,
    verifier_key,
)
from .errors import KeyFileError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "KeyFileError",
    "NoteVerifier",
    "SigningKey",
    "cosignature_time",
    "cosigned_message",
    "key_name_problem",
    "load_private_key",
    "note_key_hash",
    "parse_verifier_key",
    "require_member_key",
    "save_private_key",
    "verifier_key",
    "verify_signature",
]
