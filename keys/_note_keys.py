"""C2SP signed-note keys (c2sp.org/signed-note): key names, key IDs and verifier keys, for the two
signature types villageledger uses: a log's Ed25519 note signature (type 0x01) and a witness's Ed25519
cosignature (type 0x04, c2sp.org/tlog-cosignature ``cosignature/v1``).

A verifier key is the text ``<name>+<8 hex digits of key ID>+<base64(type || 32-byte public key)>`` (for
type 0x01, what golang.org/x/mod/sumdb/note ``NewVerifier`` accepts). The key ID (the spec's "key hash") is

    key ID = SHA-256(key name || 0x0A || type || 32-byte Ed25519 public key)[:4]

A cosignature's signature is ``u64 big-endian timestamp || Ed25519 signature`` over
``"cosignature/v1\ntime <timestamp>\n" || note text``.

Invariant: a ``NoteVerifier`` always holds a valid key name, a known type, a 32-byte public key, and the
key ID computed from them, so ``parse_verifier_key(verifier_key(v.name, v.public, v.algorithm)) == v``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ._ed25519 import PUBLIC_KEY_SIZE, verify_signature
from .encoding import b64decode, b64encode
from .errors import EncodingError, SignatureError

ALG_ED25519 = 0x01  # signed-note signature type identifier byte for Ed25519.
ALG_COSIGNATURE_V1 = 0x04  # tlog-cosignature: a timestamped Ed25519 cosignature/v1
ALGORITHMS = {ALG_ED25519: "Ed25519", ALG_COSIGNATURE_V1: "Ed25519 cosignature/v1"}
KEY_ID_SIZE = 4
TIMESTAMP_SIZE = 8
MAX_TIMESTAMP = 2**63 - 1

# Unicode White_Space (PropList.txt), the set Go's unicode.IsSpace tests; stable since Unicode 6.3.
UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


def key_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid signed-note key name, or None if it is.

    The spec's rules: non-empty, no Unicode spaces, no plus (U+002B). We also refuse what cannot appear
    in a note at all: ASCII control characters and lone surrogates (not encodable as UTF-8).
    """
    if not name:
        return "key name is empty"
    if "+" in name:
        return f"key name {name!r} contains '+'"
    for ch in name:
        if ch in UNICODE_SPACES:
            return f"key name {name!r} contains a space character U+{ord(ch):04X}"
        if ord(ch) < 0x20:
            return f"key name {name!r} contains control character U+{ord(ch):04X}"
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return f"key name {name!r} contains lone surrogate U+{ord(ch):04X}, not valid UTF-8"
    return None


def _require_name(name: str) -> None:
    problem = key_name_problem(name)
    if problem is not None:
        raise ValueError(problem)


def _require_public(public: bytes) -> None:
    if len(public) != PUBLIC_KEY_SIZE:
        raise ValueError(f"Ed25519 public key is {len(public)} bytes, expected {PUBLIC_KEY_SIZE}")


def note_key_hash(name: str, public: bytes, algorithm: int = ALG_ED25519) -> bytes:
    """The 4-byte key ID of Ed25519 key ``public`` named ``name`` for signature type ``algorithm``. Requires
    a valid name, a 32-byte key and a type of ``ALGORITHMS`` (ValueError otherwise)."""
    _require_name(name)
    _require_public(public)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"signature type 0x{algorithm:02x} is not one of {sorted(ALGORITHMS)}")
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([algorithm]) + public).digest()
    return digest[:KEY_ID_SIZE]


def verifier_key(name: str, public: bytes, algorithm: int = ALG_ED25519) -> str:
    """The verifier key text ``name+<hex key ID>+<base64(type || public)>``. Same preconditions as
    ``note_key_hash``."""
    key_id = note_key_hash(name, public, algorithm)
    return f"{name}+{key_id.hex()}+{b64encode(bytes([algorithm]) + public)}"


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """What a ``cosignature/v1`` signs: the header line, the time line and the note ``text``."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text


def cosignature_time(signature: bytes) -> int:
    """The timestamp of a cosignature/v1 signature (timestamp and Ed25519 signature, without the key ID).
    Raises SignatureError if it is not 8 + 64 bytes or the time exceeds 2**63 - 1."""
    if len(signature) != TIMESTAMP_SIZE + 64:
        raise SignatureError(f"cosignature is {len(signature)} bytes, expected {TIMESTAMP_SIZE} + 64")
    timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise SignatureError(f"cosignature time {timestamp} exceeds 2**63 - 1")
    return timestamp


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted signed-note key: its name, 4-byte key ID and 32-byte Ed25519 public key.

    Construction checks the invariant (valid name, sizes, key ID computed from name and key) and raises
    ValueError if it does not hold.
    """

    name: str
    key_hash: bytes
    public: bytes
    algorithm: int = ALG_ED25519

    def __post_init__(self) -> None:
        _require_name(self.name)
        _require_public(self.public)
        expected = note_key_hash(self.name, self.public, self.algorithm)
        if self.key_hash != expected:
            raise ValueError(
                f"key hash {self.key_hash.hex()} does not match {expected.hex()} computed for {self.name}"
            )

    @classmethod
    def from_public_key(cls, name: str, public: bytes, algorithm: int = ALG_ED25519) -> NoteVerifier:
        """The verifier for Ed25519 key ``public`` under ``name``, with its key ID computed."""
        return cls(name, note_key_hash(name, public, algorithm), public, algorithm)

    @property
    def is_cosigner(self) -> bool:
        return self.algorithm == ALG_COSIGNATURE_V1

    def verify(self, message: bytes, signature: bytes) -> None:
        """Return None if ``signature`` (without the key ID) signs note text ``message`` under this key: an
        Ed25519 signature of 64 bytes, or for a cosigner a timestamped cosignature/v1; raise SignatureError
        otherwise."""
        if self.is_cosigner:
            timestamp = cosignature_time(signature)
            verify_signature(self.public, signature[TIMESTAMP_SIZE:], cosigned_message(message, timestamp))
        else:
            verify_signature(self.public, signature, message)


def parse_verifier_key(text: str) -> NoteVerifier:
    """Parse ``name+hash+keydata`` as golang.org/x/mod/sumdb/note ``NewVerifier`` does, but strictly:
    standard padded canonical base64, type byte 0x01 (or 0x04, a cosigner), a 32-byte key, and a key ID equal to the one
    computed from name and key. Raises EncodingError saying which part is wrong."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise EncodingError(f"verifier key {text!r} is not of the form name+hash+keydata")
    name, hash16, key64 = parts
    problem = key_name_problem(name)
    if problem is not None:
        raise EncodingError(f"verifier key: {problem}")
    if not _HEX8.fullmatch(hash16):
        raise EncodingError(f"verifier key hash {hash16!r} is not 8 hexadecimal digits")
    key_data = b64decode(key64, what="verifier key data")
    if not key_data:
        raise EncodingError("verifier key data is empty")
    algorithm = key_data[0]
    if algorithm not in ALGORITHMS:
        raise EncodingError(f"verifier key algorithm 0x{algorithm:02x} is unknown, expected 0x01 (Ed25519) or "
                            "0x04 (Ed25519 cosignature/v1)")
    public = key_data[1:]
    if len(public) != PUBLIC_KEY_SIZE:
        raise EncodingError(f"verifier key is {len(public)} bytes, expected {PUBLIC_KEY_SIZE}")
    key_hash = bytes.fromhex(hash16)
    expected = note_key_hash(name, public, algorithm)
    if key_hash != expected:
        raise EncodingError(
            f"verifier key hash {hash16} does not match {expected.hex()} computed from name and key"
        )
    return NoteVerifier(name, key_hash, public, algorithm)
