"""The published RFC 6962/9162 Merkle proof vectors (transparency-dev/merkle ``testdata``), read in place
from ``../shared/vectors/merkle/``, and how each case is checked with our verifier."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.merkle import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "merkle"


def b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def load_vectors(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [
        pytest.param(json.loads(f.read_text()), id=f.relative_to(VECTORS).with_suffix("").as_posix())
        for f in files
    ]


INCLUSION_VECTORS = load_vectors("inclusion")
CONSISTENCY_VECTORS = load_vectors("consistency")


def check_inclusion_case(case: dict[str, Any]) -> None:
    verify_inclusion(
        case["leafIdx"],
        case["treeSize"],
        b64(case["leafHash"]),
        [b64(h) for h in case["proof"] or []],
        b64(case["root"]),
    )


def check_consistency_case(case: dict[str, Any]) -> None:
    verify_consistency(
        case["size1"],
        case["size2"],
        [b64(h) for h in case["proof"] or []],
        b64(case["root1"]),
        b64(case["root2"]),
    )
