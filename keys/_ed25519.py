"""Ed25519 signing keys, the one place in the project that touches ``cryptography.hazmat``.

Invariants:
- A ``SigningKey`` always wraps an Ed25519 private key; its raw private bytes never leave this module
  except PKCS#8-encrypted under a non-empty passphrase.
- Key files are created with mode 0600 from the first byte written (never chmod-ed afterwards), and an
  existing file is replaced only when the caller asks, atomically.
- Verification raises ``SignatureError`` or returns ``None``; it never returns a bool.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import NoReturn

import nacl.bindings
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import KeyFileError, SignatureError

PUBLIC_KEY_SIZE = 32  # RFC 8032 section 5.1.5: an Ed25519 public key is 32 bytes.
SIGNATURE_SIZE = 64  # RFC 8032 section 5.1.6: an Ed25519 signature is 64 bytes.
KEY_FILE_MODE = 0o600


class SigningKey:
    """An Ed25519 private key, opaque: it signs, it tells its public key, it serialises only encrypted.

    Build one with ``generate()``, ``from_encrypted_pem(...)`` or ``load_private_key(...)``.
    """

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("SigningKey wraps an Ed25519 private key; use SigningKey.generate()")
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_bytes(self) -> bytes:
        """The 32 raw bytes of the public key (RFC 8032 encoding)."""
        return self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return self._key.sign(message)

    def to_encrypted_pem(self, passphrase: bytes) -> bytes:
        """PKCS#8 PEM (``ENCRYPTED PRIVATE KEY``) under the best encryption pyca offers.

        Requires a non-empty ``passphrase``; an empty one raises ValueError, because an unencrypted
        private key must never be written.
        """
        _require_passphrase(passphrase)
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )

    @classmethod
    def from_encrypted_pem(cls, pem: bytes, passphrase: bytes) -> SigningKey:
        """The key in encrypted PKCS#8 ``pem``.

        Raises KeyFileError when the passphrase is wrong (or empty), the PEM is unencrypted or malformed,
        or the key is not Ed25519.
        """
        if not passphrase:
            raise KeyFileError("cannot decrypt private key: the passphrase is empty")
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except TypeError as exc:  # pyca: "Password was given but private key is not encrypted."
            raise KeyFileError("private key is not encrypted; refusing to use a plaintext key") from exc
        except ValueError as exc:
            if _is_password_error(exc) or _fails_to_decrypt_under_other_passphrases(pem):
                raise KeyFileError("cannot decrypt private key: wrong passphrase") from exc
            raise KeyFileError(f"private key PEM is malformed: {exc}") from exc
        except UnsupportedAlgorithm as exc:
            raise KeyFileError(f"private key uses an unsupported algorithm: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"private key is {type(key).__name__}, expected an Ed25519 key")
        return cls(key)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public_bytes.hex()})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled; use to_encrypted_pem()")


def _require_passphrase(passphrase: bytes) -> None:
    if not isinstance(passphrase, bytes):
        raise TypeError("passphrase must be bytes")
    if not passphrase:
        raise ValueError("refusing to encrypt a private key under an empty passphrase")


def save_private_key(
    key: SigningKey, path: str | os.PathLike[str], passphrase: bytes, *, overwrite: bool = False
) -> None:
    """Write ``key`` to ``path`` as encrypted PKCS#8 PEM, in a file that is mode 0600 from its creation.

    Requires a non-empty ``passphrase`` (ValueError otherwise). Refuses an existing ``path`` with
    KeyFileError unless ``overwrite`` is true; then the old file is replaced atomically (a new 0600 file
    is written beside it and renamed over it, so the old file's mode is not inherited).
    """
    pem = key.to_encrypted_pem(passphrase)
    target = Path(path)
    if not overwrite:
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        except FileExistsError as exc:
            raise KeyFileError(f"{target} already exists; pass overwrite=True to replace it") from exc
        _write_all_or_remove(fd, pem, target)
        return
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temp = Path(temp_name)  # mkstemp creates the file with mode 0600 (O_EXCL), as we need.
    _write_all_or_remove(fd, pem, temp)
    try:
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _write_all_or_remove(fd: int, data: bytes, path: Path) -> None:
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _is_password_error(error: ValueError) -> bool:
    return "password" in str(error).lower()  # pyca: "Bad decrypt. Incorrect password?"


_PROBES = (b"\x00villageledger probe 1", b"\x00villageledger probe 2", b"\x00villageledger probe 3")


def _fails_to_decrypt_under_other_passphrases(pem: bytes) -> bool:
    """Whether ``pem`` is a well-formed encrypted key whose decryption fails under other passphrases.

    A wrong passphrase decrypts to valid CBC padding about 1 time in 256; then the garbage plaintext, not
    the decryption, fails, and pyca reports the key data as malformed. A damaged file fails the same way
    under every passphrase, a well-formed one at the decryption under all but 1 in 256: three fixed probes
    tell the two apart but for 1 file in 2**24."""
    for probe in _PROBES:
        try:
            serialization.load_pem_private_key(pem, password=probe)
        except ValueError as exc:
            if _is_password_error(exc):
                return True
        except (TypeError, UnsupportedAlgorithm):
            return False
        else:
            return True  # a key under the probe: certainly not under the passphrase given
    return False


def load_private_key(path: str | os.PathLike[str], passphrase: bytes) -> SigningKey:
    """The key saved at ``path`` by ``save_private_key``. Raises KeyFileError naming the file when it
    cannot be read or decrypted, or holds anything but an encrypted Ed25519 key."""
    target = Path(path)
    try:
        pem = target.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read private key file {target}: {exc.strerror}") from exc
    try:
        return SigningKey.from_encrypted_pem(pem, passphrase)
    except KeyFileError as exc:
        raise KeyFileError(f"{target}: {exc}") from exc


# The signature rule (docs/data-model.md §3.3), one for every verifier we ship, Python and browser:
# RFC 8032 verification (cofactorless, S < L: OpenSSL's and BoringSSL's), and, before it, the public key A
# and the signature's R must each be the canonical encoding (y < p) of a point whose order is not small.
# So all of them accept exactly speccheck case 3 of ../shared/vectors/ed25519-speccheck (libsodium's row),
# whatever their treatment of small-order points and non-canonical encodings.
FIELD_PRIME = 2**255 - 19
# The points of order 1, 2, 4 and 8 (libsodium's blocklist), as canonical encodings with the sign bit clear.
SMALL_ORDER_POINTS = frozenset(bytes.fromhex(point) for point in (
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4: (±sqrt(-1), 0)
    "0100000000000000000000000000000000000000000000000000000000000000",  # order 1: the identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2: (0, -1)
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
))


def point_problem(encoded: bytes) -> str | None:
    """Why the 32-byte ``encoded`` point may not stand as a public key or a signature's R: it is not
    canonical, or its order is small; None if it may."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    if y >= FIELD_PRIME:
        return "is not a canonical encoding"
    if encoded[:31] + bytes([encoded[31] & 0x7F]) in SMALL_ORDER_POINTS:
        return "is a point of small order"
    return None


def verify_signature(public: bytes, signature: bytes, message: bytes) -> None:
    """Return None if ``signature`` is a valid Ed25519 signature of ``message`` under ``public`` by the
    signature rule above.

    Raises SignatureError when it is not, or when ``public`` is not 32 bytes or ``signature`` not 64.
    """
    if len(public) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"public key is {len(public)} bytes, expected {PUBLIC_KEY_SIZE}")
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"signature is {len(signature)} bytes, expected {SIGNATURE_SIZE}")
    for what, point in (("public key", public), ("signature's R", signature[:32])):
        problem = point_problem(point)
        if problem:
            raise SignatureError(f"Ed25519 {what} {problem}")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature as exc:
        raise SignatureError("Ed25519 signature does not verify under the given public key") from exc
    except ValueError as exc:  # a public key that does not decode to a curve point
        raise SignatureError(f"public key is not a valid Ed25519 key: {exc}") from exc


def require_member_key(public: bytes) -> None:
    """A key may be registered for a member only if it is the canonical encoding of a point of the prime-order
    subgroup (libsodium's crypto_core_ed25519_is_valid_point): no small-order, mixed-order or non-canonical
    key, under which signatures could be made without the private key or verify differently elsewhere.
    Raises SignatureError saying why."""
    if len(public) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"public key is {len(public)} bytes, expected {PUBLIC_KEY_SIZE}")
    problem = point_problem(public)
    if problem is None and not nacl.bindings.crypto_core_ed25519_is_valid_point(public):
        problem = "is not a point of the prime-order subgroup"
    if problem:
        raise SignatureError(f"Ed25519 public key {problem}")
