"""The villageledger library: entries, canonical bytes, the Merkle log, checkpoints, authorisation replay
and verification. It knows nothing of Flask, HTTP or SQL; ``keys`` is its only door to cryptography.

Public surface: ``entries`` (schemas, signing), ``state`` (``apply``: the one authorisation path),
``merkle`` (RFC 9162), ``note`` (C2SP signed notes, checkpoints, tlog-proofs), ``bundle`` (the export
format), ``verify`` (the auditor's verifier) and ``errors``.
"""
