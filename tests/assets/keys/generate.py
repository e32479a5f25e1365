"""Regenerate the key-file test assets with the OpenSSL command-line tool (not with our own code).

Every key here is a published test vector or a throwaway made for these tests: none is a secret.
- rfc8032-test1.pem: RFC 8032 section 7.1 TEST 1 Ed25519 seed.
- go-note-example.pem: the Ed25519 seed of the signer key "PRIVATE+KEY+PeterNeumann+c74f20a3+..."
  published in the documentation of golang.org/x/mod/sumdb/note.
- p256.pem: a throwaway NIST P-256 key, for "not an Ed25519 key".
All are encrypted PKCS#8 under PASSPHRASE. Run: python tests/assets/keys/generate.py
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

PASSPHRASE = "test passphrase, not a secret"
HERE = Path(__file__).parent
PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")  # RFC 8410 PrivateKeyInfo header
SEEDS = {
    "rfc8032-test1.pem": bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    "go-note-example.pem": base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:],
}


def main() -> None:
    for name, seed in SEEDS.items():
        subprocess.run(
            [
                "openssl",
                "pkcs8",
                "-topk8",
                "-inform",
                "DER",
                "-v2",
                "aes-256-cbc",
                "-passout",
                f"pass:{PASSPHRASE}",
                "-out",
                str(HERE / name),
            ],
            input=PKCS8_ED25519_PREFIX + seed,
            check=True,
        )
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes-256-cbc",
            "-pass",
            f"pass:{PASSPHRASE}",
            "-out",
            str(HERE / "p256.pem"),
        ],
        check=True,
    )


if __name__ == "__main__":
    main()
