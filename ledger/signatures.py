"""Entry signatures: every required signer signed the signing message.

Kept apart from ``entries`` (schemas, marshmallow) so that the verifier's worker processes, which only
check signatures, start by importing ``keys`` and nothing heavier.
"""

from __future__ import annotations

from collections.abc import Sequence

import keys

from .canonical import b64encode
from .errors import BadSignature, LedgerError, SignatureError

SignatureJob = tuple[int, tuple[bytes, ...], tuple[bytes, ...], bytes]
"""(index, signers, signatures, message) of one entry, as the verifier hands it to a worker."""


def check_signatures_of(signers: Sequence[bytes], signatures: Sequence[bytes], message: bytes) -> None:
    """Signature ``i`` is ``signers[i]``'s Ed25519 signature of ``message``, for every signer (the author,
    then the cosigner if any) and no other. Raises BadSignature naming the signer whose signature fails."""
    if len(signatures) < len(signers):
        raise BadSignature("the cosigner's signature is missing", field="signatures")
    if len(signatures) > len(signers):
        raise BadSignature(f"{len(signatures)} signatures for {len(signers)} signer(s)", field="signatures")
    for role, key, sig in zip(("author", "cosigner"), signers, signatures):
        try:
            keys.verify_signature(key, sig, message)
        except SignatureError as exc:
            raise BadSignature(f"signature by the {role} key {b64encode(key)} does not verify", field="signatures") from exc


def first_bad_signature(jobs: Sequence[SignatureJob]) -> tuple[int, str] | None:
    """(index, reason) of the first job, in order, whose signatures fail; None if all verify.
    Runs in a worker process, so it returns the failure instead of raising it."""
    for index, signers, signatures, message in jobs:
        try:
            check_signatures_of(signers, signatures, message)
        except LedgerError as exc:
            return index, str(exc)
    return None
