"""Looking inside our encrypted key files (PKCS#8, PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC), for
specs of how the Python and browser key loaders refuse what they must."""

from __future__ import annotations

import base64
import itertools

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

AES_256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42


def der_of(pem_text: str) -> bytes:
    return base64.b64decode("".join(pem_text.strip().splitlines()[1:-1]))


def after(der: bytes, marker: bytes, length: int) -> bytes:
    start = der.index(marker) + len(marker)
    return der[start : start + length]


def wrong_passphrase_that_unpads(key_file: str) -> str:
    """A wrong passphrase under which ``key_file`` still decrypts to valid PKCS#7 padding, as about 1 in 256
    do: only the plaintext, which is no PKCS#8 key, can tell that the passphrase is wrong."""
    der = der_of(key_file)
    salt = after(der, b"\x04\x10", 16)  # the first 16-byte OCTET STRING is the PBKDF2 salt
    iterations = int.from_bytes(after(der, salt + b"\x02\x02", 2))
    iv = after(der, AES_256_CBC + b"\x04\x10", 16)
    ciphertext = der[-64:]  # an Ed25519 PKCS#8 key, 48 bytes, padded to 64

    def unpads(passphrase: str) -> bool:
        key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(passphrase.encode())
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        last = (decryptor.update(ciphertext) + decryptor.finalize())[-16:]
        return 1 <= last[-1] <= 16 and last.endswith(bytes([last[-1]]) * last[-1])

    return next(passphrase for passphrase in map("wrong {}".format, itertools.count()) if unpads(passphrase))
