"""The villageledger benchmark suite: ``python -m bench`` (``--quick`` for a smoke run).

Every figure is measured beside its limit or peer in the same run and reported as a ratio: ledger core
(appends, ``verify_bundle``, proofs against raw Ed25519/SHA-256 and against pymerkle), HTTP (gunicorn
against a bare Flask route) and growth (10^4 .. 10^6 entries). Results go to ``bench/results`` as JSON
and a Markdown table. The suite imports the test helpers ``tests/kit.py`` and ``tests/pgserver.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: on ``sys.path`` so that ``tests.kit`` and ``tests.pgserver`` import."""

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
