"""C2SP signed notes, checkpoints and tlog proofs: c2sp.org/signed-note, tlog-checkpoint, tlog-proof@v1.

Signed note (signed-note)::

    <text: one or more lines, each ending in U+000A>
    <blank line>
    — <key name> <base64(4-byte key ID || Ed25519 signature of the text)>     (one or more lines)

The text includes its final newline but not the blank line; it MAY contain blank lines itself, since the
signatures are separated by the *last* blank line. Notes are valid UTF-8 without ASCII control characters
other than newline. A signature whose (key name, key ID) is not trusted is ignored; one that is trusted
must verify, or the whole note is rejected; at least one must verify.

Checkpoint (tlog-checkpoint) note text::

    <origin>\\n<tree size, decimal, no leading zeros>\\n<base64 RFC 6962 root hash>\\n<extension line>\\n...

Tlog proof (tlog-proof@v1)::

    c2sp.org/tlog-proof@v1
    extra <base64>              (optional)
    index <decimal>
    <base64 hash>               (zero or more, leaf's sibling first, RFC 6962 section 2.1.1)
    <blank line>
    <the signed checkpoint note, verbatim>

Signing functions raise ValueError when their preconditions do not hold (a bug in the caller); parsing
and verification of text from elsewhere raise CheckpointError (notes, checkpoints) or ProofError (tlog
proofs, inclusion) with a message naming what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from keys import (
    ALG_COSIGNATURE_V1,
    NoteVerifier,
    SigningKey,
    cosignature_time,
    cosigned_message,
    key_name_problem,
    note_key_hash,
)

from . import merkle
from .canonical import b64decode, b64encode
from .errors import CheckpointError, EncodingError, LedgerError, ProofError

SIGNATURE_PREFIX = "\u2014 "  # em dash (U+2014) and space start every signature line.
MAX_SIGNATURES = 100  # the spec asks verifiers for a limit of at least 16; Go's note package uses 100.
KEY_ID_SIZE = 4
HASH_SIZE = 32  # SHA-256, RFC 6962.
MAX_TREE_SIZE = 2**63 - 1  # sizes and indexes are int64 in the Go tlog and transparency-dev code.
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
EXTRA_PREFIX = "extra "
INDEX_PREFIX = "index "

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


# Signed notes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """The text of a note whose signatures were checked, and the names of the trusted keys that signed it
    (in order of first appearance, each name once); for each trusted cosigner among them, the time of its
    cosignature (POSIX seconds). Invariant: ``verified`` is never empty."""

    text: str
    verified: tuple[str, ...]
    cosigned_at: Mapping[str, int] = field(default_factory=dict)


def _character_problem(text: str) -> str | None:
    """Why ``text`` cannot appear in a note (a control character or lone surrogate), or None."""
    for offset, ch in enumerate(text):
        code = ord(ch)
        if code < 0x20 and ch != "\n":
            return f"control character U+{code:04X} at offset {offset}"
        if 0xD800 <= code <= 0xDFFF:
            return f"lone surrogate U+{code:04X} at offset {offset} is not valid UTF-8"
    return None


def _note_text_problem(text: str) -> str | None:
    if not text:
        return "note text is empty"
    if not text.endswith("\n"):
        return "note text does not end with a newline"
    problem = _character_problem(text)
    return None if problem is None else f"note text contains {problem}"


def sign_note(text: str, signers: Sequence[tuple[str, SigningKey]]) -> str:
    """The signed note of ``text`` with one signature line per ``(key name, key)`` in ``signers``.

    Requires: ``text`` non-empty, ending in a newline, free of control characters other than newline;
    between 1 and 100 signers, with valid key names and no (name, key) twice. Raises ValueError otherwise.
    """
    problem = _note_text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    if not signers:
        raise ValueError("a signed note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise ValueError(f"{len(signers)} signers, at most {MAX_SIGNATURES} allowed")
    message = text.encode("utf-8")
    lines: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for name, key in signers:
        key_id = note_key_hash(name, key.public_bytes)  # ValueError for an invalid name
        if (name, key_id) in seen:
            raise ValueError(f"signer {name}+{key_id.hex()} is listed twice")
        seen.add((name, key_id))
        lines.append(f"{SIGNATURE_PREFIX}{name} {b64encode(key_id + key.sign(message))}\n")
    return text + "\n" + "".join(lines)


def cosign_note(text: str, name: str, key: SigningKey, timestamp: int) -> str:
    """The ``cosignature/v1`` signature line of cosigner ``name`` on note ``text`` at ``timestamp`` (POSIX
    seconds): a statement that this is the largest consistent tree the cosigner has seen for the log.
    Requires ``text`` as for ``sign_note`` and ``0 < timestamp <= 2**63 - 1`` (ValueError otherwise)."""
    problem = _note_text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    if not 0 < timestamp <= MAX_TREE_SIZE:
        raise ValueError(f"cosignature time {timestamp} is not in [1, 2**63 - 1]")
    key_id = note_key_hash(name, key.public_bytes, ALG_COSIGNATURE_V1)
    stamp = timestamp.to_bytes(8, "big")
    signature = key.sign(cosigned_message(text.encode("utf-8"), timestamp))
    return f"{SIGNATURE_PREFIX}{name} {b64encode(key_id + stamp + signature)}\n"


def _verifier_index(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    index: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        key = (verifier.name, verifier.key_hash)
        known = index.setdefault(key, verifier)
        if known != verifier:
            raise ValueError(
                f"two trusted keys share name and key ID {verifier.name}+{verifier.key_hash.hex()}"
            )
    return index


def open_note(note: str, verifiers: Sequence[NoteVerifier]) -> Note:
    """Check the signatures of signed note ``note`` against the trusted ``verifiers``; return its text.

    Plan:
      1. The note is UTF-8 without control characters other than newline.
      2. Split it at its last blank line into text and signature block; the block ends with a newline.
      3. Parse each signature line (at most 100): em dash, space, valid key name, space, base64 of
         key ID and signature.
      4. Ignore signatures by keys not in ``verifiers``; verify every one by a trusted key (a cosigner's as a
         timestamped cosignature), and reject the note if any fails.
      5. Require at least one verified signature by a trusted key that is not a cosigner's: a witness
         vouches for what a log signed, never instead of it.

    Raises CheckpointError saying which step failed (and, for step 5, which keys signed and which are
    trusted). Raises ValueError if two different ``verifiers`` share a name and key ID.
    """
    trusted = _verifier_index(verifiers)
    # (1)
    problem = _character_problem(note)
    if problem is not None:
        raise CheckpointError(f"malformed note: contains {problem}")
    # (2)
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line between text and signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise CheckpointError("malformed note: no signature lines after the blank line")
    if not block.endswith("\n"):
        raise CheckpointError("malformed note: last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: {len(lines)} signatures, at most {MAX_SIGNATURES} accepted")
    message = text.encode("utf-8")
    verified: list[str] = []
    cosigned_at: dict[str, int] = {}
    untrusted: list[str] = []
    for number, line in enumerate(lines, start=1):
        # (3)
        name, key_id, signature = _parse_signature_line(line, number)
        verifier = trusted.get((name, key_id))
        label = f"{name}+{key_id.hex()}"
        # (4)
        if verifier is None:
            if label not in untrusted:
                untrusted.append(label)
            continue
        try:
            verifier.verify(message, signature)
        except LedgerError as exc:
            raise CheckpointError(
                f"signature {number} by trusted key {label} does not verify: {exc}"
            ) from exc
        if name not in verified:
            verified.append(name)
        if verifier.is_cosigner:
            cosigned_at[name] = max(cosigned_at.get(name, 0), cosignature_time(signature))
    # (5)
    if verified and set(verified) <= cosigned_at.keys():
        raise CheckpointError(f"no signature by a trusted log key: the note is only cosigned, by {', '.join(verified)}")
    if not verified:
        signed_by = ", ".join(untrusted)
        known = ", ".join(f"{name}+{key_id.hex()}" for name, key_id in trusted) or "none"
        raise CheckpointError(
            f"no signature by a trusted key: note is signed by {signed_by}; trusted: {known}"
        )
    return Note(text=text, verified=tuple(verified), cosigned_at=cosigned_at)


def _parse_signature_line(line: str, number: int) -> tuple[str, bytes, bytes]:
    """(key name, key ID, signature) of signature line ``number``, or CheckpointError."""
    where = f"malformed note: signature line {number}"
    if not line.startswith(SIGNATURE_PREFIX):
        raise CheckpointError(f"{where} does not start with an em dash (U+2014) and a space")
    name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    problem = key_name_problem(name)
    if problem is not None:
        raise CheckpointError(f"{where}: {problem}")
    if not space or not encoded:
        raise CheckpointError(f"{where} has no signature after the key name")
    try:
        raw = b64decode(encoded, what="signature")
    except EncodingError as exc:
        raise CheckpointError(f"{where}: {exc}") from exc
    if len(raw) <= KEY_ID_SIZE:
        raise CheckpointError(f"{where}: signature is {len(raw)} bytes, shorter than a key ID and signature")
    return name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]


# Checkpoints --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its tree: origin, size and RFC 6962 root hash, plus opaque extensions.

    Invariants (ValueError on construction otherwise): ``origin`` and every extension are non-empty single
    lines without control characters; ``0 <= size <= 2**63 - 1``; ``root_hash`` is 32 bytes.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what, line in [("origin", self.origin), *(("extension line", ext) for ext in self.extensions)]:
            problem = _line_problem(line)
            if problem is not None:
                raise ValueError(f"checkpoint {what} {problem}")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size {self.size!r} is not an integer in [0, 2**63 - 1]")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"checkpoint root hash is {len(self.root_hash)} bytes, expected {HASH_SIZE}")

    def text(self) -> str:
        """The tlog-checkpoint note text: origin, size, root hash and extensions, each line ending in \\n."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def _line_problem(line: str) -> str | None:
    if not line:
        return "is empty"
    if "\n" in line:
        return "contains a newline"
    problem = _character_problem(line)
    return None if problem is None else f"contains {problem}"


def _parse_decimal(text: str, what: str, error: type[LedgerError]) -> int:
    """``text`` as ASCII decimal without leading zeros, at most 2**63 - 1, or ``error``."""
    if not _DECIMAL.fullmatch(text):
        raise error(f"{what} {text!r} is not a decimal number without leading zeros")
    value = int(text)
    if value > MAX_TREE_SIZE:
        raise error(f"{what} {text} exceeds 2**63 - 1")
    return value


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse tlog-checkpoint note text strictly. Raises CheckpointError for: a missing final newline,
    fewer than three lines, an empty line, control characters, a size that is not canonical decimal, a
    root hash that is not canonical base64 of 32 bytes."""
    if not text.endswith("\n"):
        raise CheckpointError("malformed checkpoint: text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            f"malformed checkpoint: {len(lines)} lines, expected origin, size and root hash"
        )
    for number, line in enumerate(lines, start=1):
        problem = _line_problem(line)
        if problem is not None:
            raise CheckpointError(f"malformed checkpoint: line {number} {problem}")
    origin, size_text, root_text, *extensions = lines
    size = _parse_decimal(size_text, "malformed checkpoint: tree size", CheckpointError)
    try:
        root_hash = b64decode(root_text, length=HASH_SIZE, what="root hash")
    except EncodingError as exc:
        raise CheckpointError(f"malformed checkpoint: {exc}") from exc
    return Checkpoint(origin=origin, size=size, root_hash=root_hash, extensions=tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[tuple[str, SigningKey]]) -> str:
    """The signed note of ``checkpoint.text()``; preconditions as ``sign_note``. The log's own key name
    should be the checkpoint's origin (tlog-checkpoint), but witnesses' names differ, so it is not
    enforced."""
    return sign_note(checkpoint.text(), signers)


def open_checkpoint(note: str, verifiers: Sequence[NoteVerifier], origin: str | None = None) -> Checkpoint:
    """The checkpoint in signed note ``note``, signed by at least one of ``verifiers``.

    Raises CheckpointError when the note does not open (see ``open_note``), its text is not a checkpoint,
    or ``origin`` is given and differs from the checkpoint's origin.
    """
    checkpoint = parse_checkpoint(open_note(note, verifiers).text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin is {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


# Tlog proofs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlogProof:
    """A c2sp.org/tlog-proof@v1: the inclusion proof of the entry at ``index`` in the tree of the signed
    ``checkpoint`` note, with optional unauthenticated ``extra`` data.

    Invariants (ValueError on construction otherwise): ``0 <= index <= 2**63 - 1``; every hash is 32
    bytes; ``checkpoint`` is a non-empty note text ending in a newline. The signatures are checked only by
    ``verify_tlog_proof``.
    """

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not 0 <= self.index <= MAX_TREE_SIZE:
            raise ValueError(f"tlog proof index {self.index!r} is not an integer in [0, 2**63 - 1]")
        for position, node in enumerate(self.hashes):
            if len(node) != HASH_SIZE:
                raise ValueError(f"tlog proof hash {position} is {len(node)} bytes, expected {HASH_SIZE}")
        if not self.checkpoint or not self.checkpoint.endswith("\n"):
            raise ValueError("tlog proof checkpoint must be a signed note ending in a newline")

    def text(self) -> str:
        """The tlog-proof@v1 text."""
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append(EXTRA_PREFIX + b64encode(self.extra))
        lines.append(f"{INDEX_PREFIX}{self.index}")
        lines.extend(b64encode(node) for node in self.hashes)
        return "".join(line + "\n" for line in lines) + "\n" + self.checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse tlog-proof@v1 ``text`` strictly (the checkpoint is kept verbatim, not yet opened).

    Raises ProofError for a wrong first line, a malformed ``extra`` or ``index`` line, a hash line that
    is not canonical base64 of 32 bytes, or a missing blank line or checkpoint.
    """
    header, blank, checkpoint = text.partition("\n\n")
    if not blank:
        raise ProofError("malformed tlog proof: no blank line before the checkpoint")
    if not checkpoint.endswith("\n"):
        raise ProofError("malformed tlog proof: the checkpoint is missing or does not end with a newline")
    lines = header.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise ProofError(
            f"malformed tlog proof: first line is {lines[0][:40]!r}, expected {TLOG_PROOF_HEADER!r}"
        )
    position = 1
    extra: bytes | None = None
    if position < len(lines) and lines[position].startswith(EXTRA_PREFIX):
        extra = _proof_base64(lines[position][len(EXTRA_PREFIX) :], "extra data", None)
        position += 1
    if position >= len(lines) or not lines[position].startswith(INDEX_PREFIX):
        raise ProofError(f"malformed tlog proof: line {position + 1} is not 'index <N>'")
    index = _parse_decimal(lines[position][len(INDEX_PREFIX) :], "malformed tlog proof: index", ProofError)
    hashes = tuple(
        _proof_base64(line, f"hash {number}", HASH_SIZE) for number, line in enumerate(lines[position + 1 :])
    )
    return TlogProof(index=index, hashes=hashes, checkpoint=checkpoint, extra=extra)


def _proof_base64(text: str, what: str, length: int | None) -> bytes:
    try:
        return b64decode(text, length=length, what=what)
    except EncodingError as exc:
        raise ProofError(f"malformed tlog proof: {exc}") from exc


def verify_tlog_proof(
    text: str, leaf_hash: bytes, verifiers: Sequence[NoteVerifier], origin: str | None = None
) -> Checkpoint:
    """Return the checkpoint under which tlog proof ``text`` proves ``leaf_hash`` is in the log.

    Plan:
      1. Parse the proof (ProofError if malformed).
      2. Open its checkpoint with ``verifiers`` and ``origin`` (CheckpointError).
      3. Verify the inclusion proof of ``leaf_hash`` at ``index`` against the checkpoint's size and root
         (ProofError, also for an index not below the size).
    """
    # (1)
    proof = parse_tlog_proof(text)
    # (2)
    checkpoint = open_checkpoint(proof.checkpoint, verifiers, origin)
    # (3)
    merkle.verify_inclusion(proof.index, checkpoint.size, leaf_hash, proof.hashes, checkpoint.root_hash)
    return checkpoint
