"""Specification of ``ledger.verify`` and the bundle format of ``ledger.bundle``: an auditor who trusts
only the log's note keys proves a whole village's ledger correct, and every tampering is named.

Bundles are built in memory (no database): entries from a ``MemoryLedger``, checkpoints signed with
``sign_checkpoint`` over a ``CompactRange`` by a log key named for the village's origin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from kit import EVIDENCE, Kit, MemoryLedger

from keys import ALG_COSIGNATURE_V1, NoteVerifier, SigningKey, verifier_key
from ledger import bundle, merkle, verify
from ledger.entries import Entry, household_commitment
from ledger.errors import VerificationError
from ledger.kinds import KINDS
from ledger.note import Checkpoint, cosign_note, open_checkpoint, sign_checkpoint
from ledger.policy import parse_policy
from ledger.state import State, apply
from ledger.verify import Report, verify_bundle

Signer = tuple[str, SigningKey]
Sign = Callable[[Checkpoint], str]
CREATED = "2026-02-01T00:00:00Z"
EVERY = 8  # the test bundles carry a checkpoint after every 8 entries, and one at the end
OTHER_ORIGIN = "villageledger.test/othervillage"


def verifier(signer: Signer) -> NoteVerifier:
    name, key = signer
    return NoteVerifier.from_public_key(name, key.public_bytes)


def claimed_balances(entries: Sequence[Entry]) -> dict[str, dict[str, int]]:
    """What an honest server claims: the balances after replaying ``entries``."""
    state = State()
    for entry in entries:
        apply(state, entry)
    claimed: dict[str, dict[str, int]] = {}
    for (account, book), amount in state.balances.items():
        claimed.setdefault(book, {})[account] = amount
    return claimed


def next_checkpoint(size: int, total: int) -> int:
    """The size of the first checkpoint at or after ``size`` in a bundle of ``total`` entries."""
    return min(-(-size // EVERY) * EVERY, total)


@pytest.fixture
def log_key(kit: Kit) -> Signer:
    """The log's checkpoint signing key, named for the village's origin."""
    return kit.origin, SigningKey.generate()


@pytest.fixture
def trusted(log_key: Signer) -> list[NoteVerifier]:
    """What the auditor was given out of band: the log's verifier key."""
    return [verifier(log_key)]


@pytest.fixture(scope="module")
def standard() -> MemoryLedger:
    """The kit's standard village, signed once for the module: never changed itself."""
    return MemoryLedger(Kit())


@pytest.fixture(scope="module")
def active(standard: MemoryLedger) -> MemoryLedger:
    """The standard village after two rounds of ordinary activity (40 entries), signed once."""
    active = standard.copy(standard.kit.copy())
    for entry in active.kit.activity(rounds=2):
        active.append(entry)
    return active


@pytest.fixture
def kit(standard: MemoryLedger) -> Kit:
    """The villages' kit, with keys of its own for this test."""
    return standard.kit.copy()


@pytest.fixture
def fresh(standard: MemoryLedger, kit: Kit) -> MemoryLedger:
    """This test's copy of the standard village: genesis and setup, no points yet."""
    return standard.copy(kit)


@pytest.fixture
def ledger(active: MemoryLedger, kit: Kit) -> MemoryLedger:
    """This test's copy of the active village (40 entries)."""
    return active.copy(kit)


@pytest.fixture
def make_bundle(kit: Kit, log_key: Signer) -> Callable[..., list[bytes]]:
    """Factory: the lines of a bundle of ``entries``, as an honest server would write them unless told
    otherwise. ``checkpoints``: the sizes after which a checkpoint is written (default: every 8 entries
    and the end); ``sign``: how a checkpoint becomes a note (default: signed by the log key);
    ``origin``: the header's; ``balances``: what the footer claims (default: the replayed ones)."""

    def make(
        entries: Sequence[Entry],
        *,
        checkpoints: Sequence[int] | None = None,
        sign: Sign | None = None,
        origin: str = kit.origin,
        village: str = kit.slug,
        balances: dict[str, dict[str, int]] | None = None,
    ) -> list[bytes]:
        sizes = (
            set(checkpoints)
            if checkpoints is not None
            else {*range(EVERY, len(entries), EVERY), len(entries)}
        )
        signer = sign or (lambda checkpoint: sign_checkpoint(checkpoint, [log_key]))
        lines = [
            bundle.header_line(
                village=village,
                origin=origin,
                created=CREATED,
                log_keys=[verifier_key(log_key[0], log_key[1].public_bytes)],
            )
        ]
        tree = merkle.CompactRange()
        attachments: list[str] = []
        for entry in entries:
            lines.append(bundle.entry_line(entry.leaf))
            tree.append(merkle.hash_leaf(entry.leaf))
            attachments += KINDS[entry.kind].file_hashes(entry.body)
            if tree.size in sizes:
                lines.append(bundle.checkpoint_line(signer(Checkpoint(kit.origin, tree.size, tree.root()))))
        claimed = claimed_balances(entries) if balances is None else balances
        lines += bundle.footer_lines(balances=claimed, attachments=attachments, size=len(entries))
        return lines

    return make


@pytest.fixture
def honest(ledger: MemoryLedger, make_bundle: Callable[..., list[bytes]]) -> list[bytes]:
    return make_bundle(ledger.entries)


def refused(
    lines: Sequence[bytes], trusted: Sequence[NoteVerifier], message: str, index: int | None, **options: Any
) -> VerificationError:
    """Verify ``lines`` in this process; expect a VerificationError matching ``message`` naming ``index``."""
    with pytest.raises(VerificationError, match=message) as caught:
        verify_bundle(lines, trusted, workers=0, **options)
    assert caught.value.index == index, "the error names the entry or checkpoint at fault"
    return caught.value


def position_of(lines: Sequence[bytes], entry: Entry) -> int:
    """The line number (from 0) of ``entry`` in a bundle."""
    return list(lines).index(bundle.entry_line(entry.leaf))


def index_where(ledger: MemoryLedger, test: Callable[[Entry], bool]) -> int:
    return next(i for i, entry in enumerate(ledger.entries) if test(entry))


# An honest bundle ----------------------------------------------------------------------------------------


def test_an_honest_bundle_verifies(
    fresh: MemoryLedger, kit: Kit, make_bundle: Callable[..., list[bytes]], trusted: list[NoteVerifier]
) -> None:
    ledger = fresh
    ledger.append(kit.award("h2", 5))
    ledger.post("points.redeem", {"household": "h2", "amount": 2, "item": "香皂", "quantity": 1})
    ledger.append(kit.award("h3", 10, rule="C-01", by="grid2"))
    ledger.append(kit.award("h2", 50, rule="M-05", evidence=[EVIDENCE]))
    report = verify_bundle(make_bundle(ledger.entries), trusted, workers=0)
    assert (report.village, report.origin, report.size) == (kit.slug, kit.origin, 21)
    assert report.root == merkle.root_of([merkle.hash_leaf(e.leaf) for e in ledger.entries])
    assert report.checkpoints == 3, "after 8, 16 and 21 entries"
    assert report.balances == {
        "credit": {"household:h3": 10, "village": -10},
        "morality": {"household:h2": 53, "supermarket": 2, "village": -55},
    }
    assert report.attachments == [EVIDENCE]
    assert report.summary().startswith(f"village {kit.slug}: 21 entries verified, root ")


def test_the_verifier_gives_the_same_report_in_process_and_in_workers(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger
) -> None:
    in_process = verify_bundle(honest, trusted, workers=0)
    assert isinstance(in_process, Report) and in_process.size == len(ledger.entries) == 40
    assert verify_bundle(honest, trusted, workers=2) == in_process


def test_a_bundle_of_the_wrong_format_is_refused(honest: list[bytes], trusted: list[NoteVerifier]) -> None:
    honest[0] = b'{"bundle":"other/v9"}\n'
    refused(honest, trusted, r"^not a villageledger-bundle/v1 bundle \(header says 'other/v9'\)$", None)


def test_an_auditor_must_trust_some_log_key(honest: list[bytes]) -> None:
    with pytest.raises(VerificationError, match="^no trusted log key given$"):
        verify_bundle(honest, [], workers=0)


# Tampered entries ----------------------------------------------------------------------------------------


def test_one_changed_byte_in_an_entry_breaks_its_signature(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger, kit: Kit
) -> None:
    index = index_where(ledger, lambda e: e.kind == "points.award" and e.body["amount"] == 3)
    line = position_of(honest, ledger.entries[index])
    honest[line] = honest[line].replace(b'"amount":3,', b'"amount":4,')  # still canonical, still within M-01
    refused(
        honest,
        trusted,
        f"^entry {index}: signature by the author key {re.escape(kit.key_b64('grid1'))} does not verify$",
        index,
    )


def test_a_removed_entry_is_caught_at_the_next_checkpoint(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger
) -> None:
    index = index_where(ledger, lambda e: e.kind == "points.award" and e.body["rule"] == "C-01")
    del honest[position_of(honest, ledger.entries[index])]
    size = next_checkpoint(index + 1, len(ledger.entries))
    refused(honest, trusted, f"^checkpoint of size {size} appears after {size - 1} entries$", size - 1)


def test_swapped_entries_are_caught_by_the_root(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger
) -> None:
    index = index_where(ledger, lambda e: e.kind == "points.award" and e.body["rule"] == "C-01")
    assert ledger.entries[index + 1].kind == "points.deduct", (
        "two independent entries, each valid in either order"
    )
    first, second = position_of(honest, ledger.entries[index]), position_of(honest, ledger.entries[index + 1])
    honest[first], honest[second] = honest[second], honest[first]
    size = next_checkpoint(index + 2, len(ledger.entries))
    refused(
        honest,
        trusted,
        f"^signed checkpoint of size {size}: root mismatch: signed .*, entries give .* "
        rf"\(an entry before index {size} was changed, removed or reordered\)$",
        size,
    )


def test_an_entry_after_the_last_checkpoint_is_not_covered(
    make_bundle: Callable[..., list[bytes]], trusted: list[NoteVerifier], ledger: MemoryLedger, kit: Kit
) -> None:
    size = len(ledger.entries)
    lines = make_bundle([*ledger.entries, kit.award("h2", 1)], checkpoints=[*range(EVERY, size, EVERY), size])
    refused(lines, trusted, f"^entries {size}..{size} are not covered by a signed checkpoint$", size)


def test_an_entry_by_a_revoked_key_is_refused_where_it_stands(
    fresh: MemoryLedger, kit: Kit, make_bundle: Callable[..., list[bytes]], trusted: list[NoteVerifier]
) -> None:
    ledger = fresh
    ledger.append(kit.award("h2", 3, by="grid1"))
    ledger.post("key.revoke", {"key": kit.key_b64("grid1"), "reason": "手机丢失"}, by="secretary")
    late = kit.award("h2", 3, by="grid1")  # validly signed, by a key no longer allowed to sign
    entries = [*ledger.entries, late]
    index = len(entries) - 1
    lines = make_bundle(entries, balances={})  # checkpoints signed over it: the log itself misbehaved
    error = refused(
        lines,
        trusted,
        f"^entry {index} \\(points.award\\) refused: the author key "
        f"{re.escape(kit.key_b64('grid1'))} was revoked at index {index - 1}$",
        index,
    )
    assert error.kind == "points.award"


def test_an_entry_that_is_not_canonical_is_refused(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger
) -> None:
    line = position_of(honest, ledger.entries[5])
    honest[line] = honest[line].replace(b'{"entry":{', b'{"entry": {', 1)
    refused(honest, trusted, "^entry 5: leaf bytes are not the RFC 8785 canonical form of the entry$", 5)


# Tampered checkpoints and footers ------------------------------------------------------------------------


def test_a_checkpoint_signed_by_another_key_is_not_trusted(
    make_bundle: Callable[..., list[bytes]],
    ledger: MemoryLedger,
    trusted: list[NoteVerifier],
    kit: Kit,
    log_key: Signer,
) -> None:
    impostor = (kit.origin, SigningKey.generate())
    lines = make_bundle(
        ledger.entries, sign=lambda cp: sign_checkpoint(cp, [impostor if cp.size == 16 else log_key])
    )
    refused(
        lines,
        trusted,
        "^checkpoint after 16 entries: no signature by a trusted key: note is signed by "
        f"{re.escape(kit.origin)}\\+[0-9a-f]{{8}}; trusted: ",
        16,
    )


def test_a_checkpoint_for_another_origin_is_refused(
    make_bundle: Callable[..., list[bytes]],
    ledger: MemoryLedger,
    trusted: list[NoteVerifier],
    kit: Kit,
    log_key: Signer,
) -> None:
    def sign(checkpoint: Checkpoint) -> str:
        other = replace(checkpoint, origin=OTHER_ORIGIN) if checkpoint.size == 16 else checkpoint
        return sign_checkpoint(other, [log_key])  # the right key, the wrong log

    refused(
        make_bundle(ledger.entries, sign=sign),
        trusted,
        f"^checkpoint after 16 entries: checkpoint origin is '{OTHER_ORIGIN}', expected '{kit.origin}'$",
        16,
    )


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ({"origin": OTHER_ORIGIN}, ("testvillage", OTHER_ORIGIN)),
        ({"village": "othervillage"}, ("othervillage", None)),
    ],
    ids=["origin", "village"],
)
def test_a_header_must_name_the_genesis_village_and_origin(
    make_bundle: Callable[..., list[bytes]],
    ledger: MemoryLedger,
    trusted: list[NoteVerifier],
    kit: Kit,
    header: dict[str, str],
    said: tuple[str, str | None],
) -> None:
    # The header is unsigned: the report must not name a village or origin the entries are not for.
    village, origin = said[0], said[1] or kit.origin
    refused(
        make_bundle(ledger.entries, **header),
        trusted,
        f"^entry 0 \\(village.genesis\\) is village '{kit.slug}' with origin '{kit.origin}', "
        f"the bundle says '{village}' with origin '{origin}'$",
        0,
    )


def test_a_changed_balance_claim_names_the_account(
    make_bundle: Callable[..., list[bytes]], ledger: MemoryLedger, trusted: list[NoteVerifier]
) -> None:
    claimed = claimed_balances(ledger.entries)
    actual = claimed["morality"]["household:h2"]
    claimed["morality"]["household:h2"] = actual + 100
    refused(
        make_bundle(ledger.entries, balances=claimed),
        trusted,
        f"^balance of household:h2 in the morality ledger: the server claims {actual + 100}, "
        f"the entries give {actual}$",
        None,
    )


def test_an_omitted_attachment_is_refused(honest: list[bytes], trusted: list[NoteVerifier]) -> None:
    position = next(i for i, line in enumerate(honest) if line.startswith(b'{"attachments":'))
    honest[position] = b'{"attachments":[]}\n'
    refused(honest, trusted, f"^attachment list omits {EVIDENCE}, referenced by an entry$", None)


@pytest.mark.parametrize("keep", [-1, 30], ids=["no end line", "cut after entry 30"])
def test_a_truncated_bundle_is_refused(honest: list[bytes], trusted: list[NoteVerifier], keep: int) -> None:
    if keep < 0:
        lines, size = honest[:-1], 40
    else:
        entries = [i for i, line in enumerate(honest) if line.startswith(b'{"entry":')]
        lines, size = honest[: entries[keep - 1] + 1], keep
    refused(lines, trusted, rf"^bundle is truncated after {size} entries \(no end line\)$", size)


def test_an_entry_after_the_footer_is_refused(
    honest: list[bytes], trusted: list[NoteVerifier], kit: Kit
) -> None:
    honest.insert(len(honest) - 1, bundle.entry_line(kit.award("h2", 1).leaf))
    refused(honest, trusted, "^entry 40 appears after the bundle footer$", 40)


# Bundle structure --------------------------------------------------------------------------------------


def test_the_header_comes_first(honest: list[bytes], trusted: list[NoteVerifier]) -> None:
    refused(honest[1:], trusted, "^the bundle does not start with its header$", None)


def test_a_bundle_has_one_header(honest: list[bytes], trusted: list[NoteVerifier]) -> None:
    refused([honest[0], *honest], trusted, "^the bundle has a second header$", None)


def test_no_checkpoint_follows_the_footer(honest: list[bytes], trusted: list[NoteVerifier]) -> None:
    last_checkpoint = max(i for i, line in enumerate(honest) if line.startswith(b'{"checkpoint":'))
    lines = [*honest, honest[last_checkpoint]]
    refused(lines, trusted, r"^a checkpoint appears after the bundle footer \(at 40 entries\)$", 40)


@pytest.mark.parametrize("line", ['{"balances":', '{"attachments":'])
def test_the_footer_has_balances_and_attachments(
    honest: list[bytes], trusted: list[NoteVerifier], line: str
) -> None:
    lines = [each for each in honest if not each.startswith(line.encode())]
    refused(lines, trusted, "^the bundle footer lacks its balances or attachments line$", None)


def test_an_unknown_bundle_line_is_refused(honest: list[bytes], trusted: list[NoteVerifier]) -> None:
    honest.insert(-1, b'{"comment":"x"}\n')
    refused(honest, trusted, r"^unknown bundle line with keys \['comment'\]$", None)


def test_a_bundle_line_must_be_strict_json(honest: list[bytes], trusted: list[NoteVerifier]) -> None:
    honest.insert(-1, b'{"end":{"size":40},"end":{"size":40}}\n')
    refused(honest, trusted, f"^bundle line {len(honest) - 1}: duplicate JSON member 'end'$", None)


# Checkpoints the auditor kept ----------------------------------------------------------------------------


@pytest.fixture
def kept(
    kit: Kit, ledger: MemoryLedger, log_key: Signer, trusted: list[NoteVerifier]
) -> Callable[[list[Entry]], Checkpoint]:
    """Factory: the checkpoint the log signed for ``entries``, as an auditor kept it earlier."""

    def keep(entries: list[Entry]) -> Checkpoint:
        root = merkle.root_of([merkle.hash_leaf(e.leaf) for e in entries])
        note = sign_checkpoint(Checkpoint(kit.origin, len(entries), root), [log_key])
        return open_checkpoint(note, trusted, origin=kit.origin)

    return keep


def test_a_kept_checkpoint_that_agrees_verifies(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger, kept: Callable[..., Checkpoint]
) -> None:
    report = verify_bundle(honest, trusted, known=[kept(ledger.entries[:23])], workers=0)
    assert report.size == 40


def test_a_kept_checkpoint_of_a_fork_is_refused(
    honest: list[bytes],
    trusted: list[NoteVerifier],
    ledger: MemoryLedger,
    kit: Kit,
    kept: Callable[..., Checkpoint],
) -> None:
    fork = [*ledger.entries[:22], kit.award("h3", 9)]  # what the log showed someone else at size 23
    refused(honest, trusted, "^a checkpoint you kept of size 23: root mismatch", 23, known=[kept(fork)])


def test_a_kept_checkpoint_beyond_the_bundle_is_refused(
    make_bundle: Callable[..., list[bytes]],
    trusted: list[NoteVerifier],
    ledger: MemoryLedger,
    kept: Callable[..., Checkpoint],
) -> None:
    # The log once signed 40 entries; a bundle of 35 is a rollback, which a kept checkpoint must expose.
    refused(
        make_bundle(ledger.entries[:35]),
        trusted,
        "^the bundle ends at 35 entries, before the checkpoint of size 40 you kept: "
        "the log was rolled back or this bundle is cut short$",
        35,
        known=[kept(ledger.entries)],
    )


# Log-key rotation ----------------------------------------------------------------------------------------


@pytest.fixture
def rotated(
    make_bundle: Callable[..., list[bytes]], ledger: MemoryLedger, log_key: Signer, kit: Kit
) -> tuple[list[bytes], Signer]:
    """A bundle whose checkpoints up to size 16 are signed by ``log_key``, later ones by a new key."""
    new_key = (kit.origin, SigningKey.generate())
    lines = make_bundle(
        ledger.entries, sign=lambda cp: sign_checkpoint(cp, [log_key if cp.size <= 16 else new_key])
    )
    return lines, new_key


def test_checkpoints_from_before_a_rotation_verify_with_both_keys(
    rotated: tuple[list[bytes], Signer], trusted: list[NoteVerifier]
) -> None:
    lines, new_key = rotated
    report = verify_bundle(lines, [*trusted, verifier(new_key)], workers=0)
    assert (report.size, report.checkpoints) == (40, 5)


def test_checkpoints_from_before_a_rotation_need_the_old_key(
    rotated: tuple[list[bytes], Signer], kit: Kit
) -> None:
    lines, new_key = rotated
    refused(lines, [verifier(new_key)], "^checkpoint after 8 entries: no signature by a trusted key", 8)


# Personal data -------------------------------------------------------------------------------------------

PERSONAL = {
    "head": "王小明",
    "phone": "13812345678",
    "id_number": "330182199001011234",
    "address": "新安江街道梅岭路12号",
}


def test_personal_data_never_reaches_the_bundle(
    ledger: MemoryLedger, kit: Kit, make_bundle: Callable[..., list[bytes]], trusted: list[NoteVerifier]
) -> None:
    salt = bytes(range(16))  # erased with the personal data; the commitment alone stays on the log
    body = {**kit.household_body("h9", "g1"), "commitment": household_commitment(salt, PERSONAL)}
    ledger.post("household.register", body, by="grid1")
    ledger.post("household.update", {"household": "h9", "public": {"label": "9号", "lead_household": True}})
    lines = make_bundle(ledger.entries)
    data = b"".join(lines)
    for value in PERSONAL.values():
        assert value.encode() not in data and value.encode("unicode_escape") not in data, (
            f"{value} is not published"
        )
    assert salt.hex().encode() not in data
    assert verify_bundle(lines, trusted, workers=0).size == len(ledger.entries), (
        "the verifier needs none of it"
    )


# The same verdict in workers -------------------------------------------------------------------------------


def verdicts(lines: Sequence[bytes], trusted: Sequence[NoteVerifier], monkeypatch: pytest.MonkeyPatch) -> VerificationError:
    """The error of ``lines`` in this process; asserts that workers raise the same (message and index),
    with tasks of 3 entries and one task in flight per worker, so later tasks are pending when it is raised."""
    with pytest.raises(VerificationError) as in_process:
        verify_bundle(lines, trusted, workers=0)
    monkeypatch.setattr(verify, "TASK", 3)
    monkeypatch.setattr(verify, "AHEAD", 1)
    with pytest.raises(VerificationError) as in_workers:
        verify_bundle(lines, trusted, workers=2)
    assert (str(in_workers.value), in_workers.value.index) == (str(in_process.value), in_process.value.index)
    return in_process.value


def break_signature(
    lines: list[bytes], ledger: MemoryLedger, index: int, change: tuple[bytes, bytes] = (rb'"amount":\d+,', b'"amount":4,')
) -> None:
    """Entry ``index``, a points award, changed (by default its amount): still canonical, its signature broken."""
    line = position_of(lines, ledger.entries[index])
    lines[line] = re.sub(*change, lines[line], count=1)


def awards(ledger: MemoryLedger) -> list[int]:
    return [i for i, e in enumerate(ledger.entries) if e.kind == "points.award" and e.body["rule"] == "M-01"]


@pytest.mark.parametrize(
    "later",
    [
        pytest.param(lambda lines, at: lines.__delitem__(at + 3), id="a removed entry"),
        pytest.param(lambda lines, at: lines.__setitem__(at + 2, lines[at + 2].replace(b'{"entry":{', b'{"entry": {', 1)),
                     id="a non-canonical entry"),
        pytest.param(lambda lines, at: lines.insert(at + 2, lines[0]), id="a second header"),
        pytest.param(lambda lines, at: lines.__setitem__(-1, b'{"end":{"size":1}}\n'), id="a wrong footer"),
        pytest.param(lambda lines, at: None, id="nothing else"),
    ],
)
def test_workers_name_the_first_bad_signature_before_any_later_fault(
    honest: list[bytes],
    trusted: list[NoteVerifier],
    ledger: MemoryLedger,
    monkeypatch: pytest.MonkeyPatch,
    later: Callable[[list[bytes], int], None],
) -> None:
    index = awards(ledger)[1]
    line = position_of(honest, ledger.entries[index])
    break_signature(honest, ledger, index)
    later(honest, line)
    error = verdicts(honest, trusted, monkeypatch)
    assert re.match(f"^entry {index}: signature by the author key .* does not verify$", str(error))


def test_a_bad_signature_comes_before_the_replay_of_the_same_entry(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = awards(ledger)[0]
    break_signature(honest, ledger, index, (rb'"household":"h\d"', b'"household":"h9"'))  # its replay fails too
    with monkeypatch.context() as unsigned, pytest.raises(VerificationError, match=rf"^entry {index} \(points.award\) refused"):
        unsigned.setattr(verify._InProcess, "add", lambda *_: None)  # signatures unchecked: the replay fails
        verify_bundle(honest, trusted, workers=0)
    assert re.match(f"^entry {index}: signature by .* does not verify$", str(verdicts(honest, trusted, monkeypatch)))


def test_a_fault_before_a_bad_signature_is_named_first(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, last = awards(ledger)[0], awards(ledger)[-1]
    break_signature(honest, ledger, last)
    line = position_of(honest, ledger.entries[first])
    honest[line] = honest[line].replace(b'{"entry":{', b'{"entry": {', 1)
    error = verdicts(honest, trusted, monkeypatch)
    assert (str(error), error.index) == (f"entry {first}: leaf bytes are not the RFC 8785 canonical form of the entry", first)


def test_the_first_of_several_bad_signatures_is_named(
    honest: list[bytes], trusted: list[NoteVerifier], ledger: MemoryLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in reversed(awards(ledger)[1:]):
        break_signature(honest, ledger, index)
    assert verdicts(honest, trusted, monkeypatch).index == awards(ledger)[1]


# A server that logs what the checks and balances forbid (rules 2) ----------------------------------------

OVERSTEPS: dict[str, Callable[[Kit], Entry]] = {
    "the committee makes itself supervisor": lambda kit: kit.sign(
        "member.role", {"member": "secretary", "roles": ["committee", "supervisor"]}, by="secretary"),
    "the committee switches the desk off": lambda kit: kit.sign(
        "key.revoke", {"key": kit.key_b64("intake"), "reason": "关闭"}, by="secretary"),
    "a deduction rule nobody approved": lambda kit: kit.sign("rule.publish", {
        "rule": "D-09", "title_zh": "乱扔垃圾", "title_en": "Littering", "ledger": "morality", "direction": "deduct",
        "amount": 5, "evidence_required": False}),
    "an entry dated a year back": lambda kit: kit.sign(
        "points.award", {"household": "h2", "rule": "M-01", "amount": 3, "reason": "补录"}, time="2025-12-01T00:00:00Z"),
}


@pytest.mark.parametrize("overstep", list(OVERSTEPS))
def test_a_bundle_in_which_the_server_logged_an_overstep_is_refused(
    ledger: MemoryLedger, kit: Kit, make_bundle: Callable[..., list[bytes]], trusted: list[NoteVerifier], overstep: str
) -> None:
    entry = OVERSTEPS[overstep](kit)
    entries = [*ledger.entries, entry]
    index = len(entries) - 1
    refused(make_bundle(entries, balances={}), trusted, rf"^entry {index} \({re.escape(entry.kind)}\) refused: rule 2", index)


# With a policy (C2SP tlog-policy): the township's witness must have cosigned ----------------------------

WITNESS_KEY = SigningKey.generate()
POLICY_TEXT = (f"witness township {verifier_key('township.example/w', WITNESS_KEY.public_bytes, ALG_COSIGNATURE_V1)}\n"
               "quorum township\n").encode()
POLICY = parse_policy(POLICY_TEXT)  # the logs left to the context: the auditor's --log-key


def _cosigning(log_key: Signer, *, at: Callable[[Checkpoint], int] | None, sizes: set[int] | None = None) -> Sign:
    """Checkpoints signed by the log key and, at ``sizes`` (all if None), cosigned by the township at ``at``."""
    def sign(checkpoint: Checkpoint) -> str:
        note = sign_checkpoint(checkpoint, [log_key])
        if at is None or (sizes is not None and checkpoint.size not in sizes):
            return note
        return note + cosign_note(checkpoint.text(), "township.example/w", WITNESS_KEY, at(checkpoint))
    return sign


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


def test_with_a_policy_a_bundle_whose_last_checkpoint_the_quorum_cosigned_verifies(
        honest: list[bytes], ledger: MemoryLedger, make_bundle: Callable[..., list[bytes]], log_key: Signer,
        trusted: list[NoteVerifier]) -> None:
    lines = make_bundle(ledger.entries, sign=_cosigning(log_key, at=lambda _: _now() + 60, sizes={40}))
    assert verify_bundle(lines, trusted, policy=POLICY, workers=0).size == 40
    with_the_log = f"log {verifier_key(log_key[0], log_key[1].public_bytes)}\n".encode() + POLICY_TEXT
    assert verify_bundle(lines, [], policy=parse_policy(with_the_log), workers=0).size == 40, "or the policy's log"


def test_with_a_policy_entries_no_cosigned_checkpoint_covers_fail(
        ledger: MemoryLedger, make_bundle: Callable[..., list[bytes]], log_key: Signer, trusted: list[NoteVerifier]) -> None:
    lines = make_bundle(ledger.entries, sign=_cosigning(log_key, at=lambda _: _now() + 60, sizes={32}))
    with pytest.raises(VerificationError, match="entries 32..39 are not covered by a checkpoint the policy's quorum"):
        verify_bundle(lines, trusted, policy=POLICY, workers=0)
    assert verify_bundle(lines, trusted, workers=0).size == 40, "without a policy, cosignatures are not required"


def test_with_a_policy_an_entry_dated_after_the_cosignature_that_covers_it_fails(
        ledger: MemoryLedger, make_bundle: Callable[..., list[bytes]], log_key: Signer, trusted: list[NoteVerifier]) -> None:
    """The committee cannot choose its entries' dates: the township's cosignature, an hour before them, says
    when they existed at the latest."""
    lines = make_bundle(ledger.entries, sign=_cosigning(log_key, at=lambda _: _now() - 3600, sizes={40}))
    with pytest.raises(VerificationError, match="an entry before it is dated .*, after township.example/w cosigned it"):
        verify_bundle(lines, trusted, policy=POLICY, workers=0)


def test_with_a_policy_a_bad_cosignature_by_a_listed_witness_fails(
        ledger: MemoryLedger, make_bundle: Callable[..., list[bytes]], log_key: Signer, trusted: list[NoteVerifier]) -> None:
    def forged(checkpoint: Checkpoint) -> str:
        honest = _cosigning(log_key, at=lambda _: _now())(checkpoint)
        return honest[: -10] + ("A" if honest[-10] != "A" else "B") + honest[-9:]
    with pytest.raises(VerificationError, match="does not verify"):
        verify_bundle(make_bundle(ledger.entries, sign=forged), trusted, policy=POLICY, workers=0)
