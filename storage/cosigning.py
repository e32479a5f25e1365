"""Asking the township's witnesses to cosign (the log's side of C2SP tlog-witness), and keeping what they sign.

For each witness the server is configured with (``WITNESSES``: pairs of submission prefix and cosigner key),
``request_cosignature`` sends the latest checkpoint with a consistency proof from the size that witness last
cosigned, and stores the cosignature line it answers after verifying it with the witness's key. Run for every
village every few seconds (``villageledger cosign --every 5``), not once per entry: a witness signs the latest
tree, and each cosignature covers every entry before it.

Invariant: every stored cosignature verifies under its witness's key over the stored checkpoint of its size.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass

from sqlalchemy import func, select

from keys import NoteVerifier, parse_verifier_key, verifier_key
from ledger.errors import CheckpointError, EncodingError
from ledger.note import open_note
from ledger.witness import AddCheckpoint

from . import models as m
from .db import read_session, write_session
from .errors import StorageError
from .store import Store

TIMEOUT_SECONDS = 10
WITNESSES_ENV = "VILLAGELEDGER_WITNESSES"


class CosigningError(StorageError):
    """A witness did not cosign: it could not be reached, refused (``status``), or answered what does not verify."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness: its submission prefix (``https://…/witness``) and its cosigner key (signed-note type 0x04)."""

    url: str
    key: NoteVerifier

    @property
    def vkey(self) -> str:
        """Its verifier key, as text (what a door plate pins, and a phone is given to check against the pin)."""
        return verifier_key(self.key.name, self.key.public, self.key.algorithm)


def configured_witnesses() -> list[WitnessEndpoint]:
    """The witnesses ``VILLAGELEDGER_WITNESSES`` names (the command line's; the app reads ``WITNESSES`` from its
    configuration, which that variable also sets). Raises ValueError as ``parse_witnesses``."""
    return parse_witnesses(os.environ.get(WITNESSES_ENV, ""))


def parse_witnesses(text: str) -> list[WitnessEndpoint]:
    """``WITNESSES``: whitespace-separated pairs ``<submission prefix> <cosigner verifier key>``. Raises
    ValueError naming the pair that is not one."""
    words = text.split()
    if len(words) % 2:
        raise ValueError("WITNESSES lists pairs of a URL and a cosigner key; one is missing")
    witnesses = []
    for url, vkey in zip(words[::2], words[1::2], strict=True):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"WITNESSES: {url!r} is not an http(s) URL")
        try:
            key = parse_verifier_key(vkey)
        except EncodingError as exc:
            raise ValueError(f"WITNESSES: the key after {url}: {exc}") from exc
        if not key.is_cosigner:
            raise ValueError(f"WITNESSES: the key after {url} is not a cosigner key (type 0x04)")
        witnesses.append(WitnessEndpoint(url.rstrip("/"), key))
    return witnesses


def request_cosignature(store: Store, slug: str, witness: WitnessEndpoint) -> int:
    """Have ``witness`` cosign the village's latest checkpoint, unless it already has; returns the size it
    has cosigned. Raises CosigningError if it refuses or cannot be reached.

    Plan:
      1. the latest checkpoint, and the size this witness last cosigned (0 if never);
      2. post it with the consistency proof from that size; on 409 the witness says which size it holds:
         post once more from that size (it is ours if the witness is honest and the log append-only);
      3. verify the cosignature line over the checkpoint with the witness's key, and keep it.
    """
    # (1)
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        size, note = store.latest(session, village)
        assert village.id is not None
        village_id = village.id
        mine = (m.CosignatureRow.village_id == village_id, m.CosignatureRow.witness == witness.key.name)
        old = session.execute(select(func.max(m.CosignatureRow.size)).where(*mine)).scalar() or 0  # type: ignore[arg-type]
    if old == size:
        return size
    # (2)
    status, answer = _post(store, slug, witness, old, size, note)
    if status == 409:
        held = _held_size(answer, size, witness)
        status, answer = _post(store, slug, witness, held, size, note)
    if status != 200:
        raise CosigningError(f"witness {witness.key.name} refused the checkpoint of {size} ({status}): {answer[:300]}",
                             status=status)
    # (3)
    try:
        log_keys = [parse_verifier_key(text) for text in store.verifier_keys(slug)]
        cosigned_at = open_note(note + answer, [*log_keys, witness.key]).cosigned_at[witness.key.name]
    except (CheckpointError, KeyError) as exc:
        raise CosigningError(f"witness {witness.key.name} answered no valid cosignature: {answer[:300]!r}") from exc
    line = next(line for line in answer.splitlines(keepends=True) if line.startswith(f"\u2014 {witness.key.name} "))
    with write_session(store.engine) as session:
        session.add(m.CosignatureRow(village_id=village_id, witness=witness.key.name, size=size, line=line,
                                     cosigned_at=cosigned_at))
        session.commit()
    return size


def _held_size(answer: str, size: int, witness: WitnessEndpoint) -> int:
    """The size in a 409 answer, which must be a size of ours: at most the latest."""
    held = answer.strip()
    if not held.isdigit() or int(held) > size:
        raise CosigningError(f"witness {witness.key.name} holds size {held[:40]!r} of this log, beyond ours ({size}): "
                             "it has seen another log under this origin", status=409)
    return int(held)


def _post(store: Store, slug: str, witness: WitnessEndpoint, old: int, size: int, note: str) -> tuple[int, str]:
    """POST add-checkpoint from ``old``; (status, body)."""
    proof = store.consistency_proof(slug, old, size) if 0 < old < size else []
    body = AddCheckpoint(old, tuple(proof), note).encode()
    request = urllib.request.Request(f"{witness.url}/add-checkpoint", data=body, method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        raise CosigningError(f"witness {witness.key.name} at {witness.url} cannot be reached: {exc}") from exc
