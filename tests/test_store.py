"""Specification of ``storage.Store``: the ledger kept in SQL, on SQLite and on PostgreSQL.

Every test runs on both backends (the ``backend`` fixture) against a fresh database of its own. The
store must answer with proofs an auditor can check without it, keep batches atomic and re-posts
idempotent, let the database itself refuse to rewrite the log, and notice when an operator rewrites it
anyway behind the triggers' back.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import json
import math
import multiprocessing
import queue
import re
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from kit import EVIDENCE, LOG_KEY_PASSPHRASE, Kit, StoredVillage
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel
from statements import recorded_statements, tree_node_reads
from tamper import behind_the_triggers, delete_entry, flip_one_byte, sql, swap_entries

import keys
import storage.db
from ledger import merkle
from ledger.entries import Entry, household_commitment
from ledger.errors import (
    BadSignature,
    CheckpointError,
    EntryError,
    NotAuthorised,
    ProofError,
    Replay,
    RuleViolation,
    VerificationError,
)
from ledger.note import Checkpoint, open_checkpoint, verify_tlog_proof
from ledger.verify import Report, verify_bundle
from storage import Appended, StorageError, Store, make_engine
from storage.derived import DERIVED_TABLES
from storage.migrate import alembic_config, upgrade

LOG_TABLES = ("entries", "tree_nodes", "checkpoints")
SETUP_SIZE = 17  # genesis and the 16 entries of Kit.setup_entries()
ON_POSTGRESQL = pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


# --- helpers -----------------------------------------------------------------------------------------


def opened(village: StoredVillage, note: str) -> Checkpoint:
    return open_checkpoint(note, village.trusted(), origin=village.kit.origin)


def audit(village: StoredVillage, trusted: Sequence[keys.NoteVerifier] | None = None) -> Report:
    """What an auditor does with the export: verify it trusting only the village's log keys."""
    return verify_bundle(village.store.export(village.slug), trusted or village.trusted(), workers=0)


def signed_checkpoints(village: StoredVillage) -> list[Checkpoint]:
    """Every checkpoint the store ever signed for the village, opened, in order of size."""
    notes = [json.loads(line)["checkpoint"] for line in village.store.export(village.slug) if line.startswith(b'{"checkpoint":')]
    return [opened(village, note) for note in notes]


def snapshot(village: StoredVillage) -> tuple[int, str, dict[str, list[tuple[Any, ...]]]]:
    """Everything an append may change: size, latest checkpoint, every derived row."""
    store = village.store
    return store.size(village.slug), store.latest_checkpoint(village.slug), store.derived_dump(village.slug)


def assert_includes(village: StoredVillage, appended: Appended) -> None:
    """``appended.checkpoint`` is signed by the village and proves its entry is in the log."""
    checkpoint = opened(village, appended.checkpoint)
    assert checkpoint.size == appended.tree_size
    proof = village.store.inclusion_proof(village.slug, appended.index, checkpoint.size)
    merkle.verify_inclusion(appended.index, checkpoint.size, appended.leaf_hash, proof, checkpoint.root_hash)


def assert_consistent_history(village: StoredVillage, start: int, appended: Sequence[Appended]) -> None:
    """After concurrent appends: contiguous indexes from ``start``, each answer proves its entry, every
    signed checkpoint extends the one before (consistency proofs), and the store's self-check passes."""
    indexes = sorted(a.index for a in appended)
    assert indexes == list(range(start, start + len(appended)))
    assert village.size() == start + len(appended)
    for answer in appended:
        assert answer.leaf_hash == merkle.hash_leaf(village.store.leaf(village.slug, answer.index))
        assert_includes(village, answer)
    checkpoints = signed_checkpoints(village)
    sizes = [c.size for c in checkpoints]
    assert sizes == sorted(set(sizes)), "one checkpoint per size, in order"
    for older, newer in itertools.pairwise(checkpoints):
        proof = village.store.consistency_proof(village.slug, older.size, newer.size)
        merkle.verify_consistency(older.size, newer.size, proof, older.root_hash, newer.root_hash)
    assert village.store.check(village.slug).size == start + len(appended)


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def one_by_one(store: Store, kit: Kit) -> tuple[StoredVillage, dict[int, Checkpoint]]:
    """The standard village appended one entry per batch, so that every size 1..17 has a signed
    checkpoint; with those checkpoints by size."""
    village = StoredVillage.create(store, kit, setup=False)
    for entry in kit.setup_entries():
        village.append(entry)
    checkpoints = {c.size: c for c in signed_checkpoints(village)}
    assert sorted(checkpoints) == list(range(1, SETUP_SIZE + 1))
    return village, checkpoints


# --- appending ---------------------------------------------------------------------------------------


def test_a_village_starts_with_its_genesis_at_index_0(store: Store, kit: Kit) -> None:
    genesis = kit.genesis()
    answer = store.create_village(genesis)
    assert (answer.entry_id, answer.index, answer.tree_size) == (genesis.id, 0, 1)
    checkpoint = open_checkpoint(answer.checkpoint, [keys.parse_verifier_key(v) for v in store.verifier_keys(kit.slug)])
    assert (checkpoint.origin, checkpoint.size) == (kit.origin, 1)
    assert checkpoint.root_hash == answer.leaf_hash == merkle.hash_leaf(genesis.leaf)  # a tree of one leaf
    with pytest.raises(EntryError, match="village 'testvillage' already exists"):
        store.create_village(kit.genesis())


def test_append_returns_contiguous_indexes_leaf_hashes_and_a_checkpoint_that_includes_each_entry(
    village: StoredVillage,
) -> None:
    kit = village.kit
    start = village.size()
    batch = [kit.award("h2", amount) for amount in (1, 2, 3)]
    answers = village.append(*batch)
    assert [a.index for a in answers] == [start, start + 1, start + 2]
    assert [a.entry_id for a in answers] == [entry.id for entry in batch]
    assert [a.leaf_hash for a in answers] == [merkle.hash_leaf(entry.leaf) for entry in batch]
    assert {a.tree_size for a in answers} == {start + 3}
    for answer, entry in zip(answers, batch):
        assert village.store.leaf(village.slug, answer.index) == entry.leaf
        assert_includes(village, answer)
    (next_answer,) = village.append(kit.award("h3", 4, by="grid2"))
    assert (next_answer.index, next_answer.tree_size) == (start + 3, start + 4)
    assert_includes(village, next_answer)


def test_every_checkpoint_is_signed_by_the_village_log_key_for_its_origin(village: StoredVillage) -> None:
    (answer,) = village.append(village.kit.award())
    stranger = keys.SigningKey.generate()
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        open_checkpoint(answer.checkpoint, [keys.parse_verifier_key(keys.verifier_key(village.kit.origin, stranger.public_bytes))])
    with pytest.raises(CheckpointError, match="expected 'elsewhere.example/log'"):
        open_checkpoint(answer.checkpoint, village.trusted(), origin="elsewhere.example/log")


# --- proofs ------------------------------------------------------------------------------------------


def test_inclusion_proofs_of_every_entry_in_every_tree_size_verify(
    one_by_one: tuple[StoredVillage, dict[int, Checkpoint]],
) -> None:
    village, checkpoints = one_by_one
    leaf_hashes = [merkle.hash_leaf(village.store.leaf(village.slug, index)) for index in range(SETUP_SIZE)]
    for size, checkpoint in checkpoints.items():
        for index in range(size):
            proof = village.store.inclusion_proof(village.slug, index, size)
            merkle.verify_inclusion(index, size, leaf_hashes[index], proof, checkpoint.root_hash)


def test_consistency_proofs_between_every_pair_of_tree_sizes_verify(
    one_by_one: tuple[StoredVillage, dict[int, Checkpoint]],
) -> None:
    village, checkpoints = one_by_one
    for first in range(1, SETUP_SIZE + 1):
        for second in range(first, SETUP_SIZE + 1):
            proof = village.store.consistency_proof(village.slug, first, second)
            merkle.verify_consistency(first, second, proof, checkpoints[first].root_hash, checkpoints[second].root_hash)


def test_a_proof_for_the_wrong_leaf_or_root_does_not_verify(
    one_by_one: tuple[StoredVillage, dict[int, Checkpoint]],
) -> None:
    village, checkpoints = one_by_one
    proof = village.store.inclusion_proof(village.slug, 5, 12)
    other_leaf = merkle.hash_leaf(village.store.leaf(village.slug, 6))
    with pytest.raises(ProofError, match="root mismatch"):
        merkle.verify_inclusion(5, 12, other_leaf, proof, checkpoints[12].root_hash)
    proof = village.store.consistency_proof(village.slug, 5, 12)
    with pytest.raises(ProofError):
        merkle.verify_consistency(5, 12, proof, checkpoints[6].root_hash, checkpoints[12].root_hash)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (lambda s, slug: s.inclusion_proof(slug, 17, 17), "index 17 is outside a tree of size 17"),
        (lambda s, slug: s.inclusion_proof(slug, -1, 5), "index -1 is outside a tree of size 5"),
        (lambda s, slug: s.inclusion_proof(slug, 0, 18), r"tree size 18 is outside 1\.\.17"),
        (lambda s, slug: s.consistency_proof(slug, 0, 5), "need 0 < first <= second, got first=0 second=5"),
        (lambda s, slug: s.consistency_proof(slug, 6, 5), "need 0 < first <= second, got first=6 second=5"),
        (lambda s, slug: s.consistency_proof(slug, 3, 18), r"tree size 18 is outside 1\.\.17"),
        (lambda s, slug: s.tlog_proof(slug, 17), "no entry at index 17 in village 'testvillage'"),
        (lambda s, slug: s.leaf(slug, 17), "no entry at index 17 in village 'testvillage'"),
        (lambda s, slug: s.inclusion_proof("nowhere", 0, 1), "no village 'nowhere'"),
    ],
    ids=["index=size", "negative index", "size beyond the log", "first=0", "first>second",
         "second beyond the log", "tlog-proof beyond the log", "leaf beyond the log", "unknown village"],
)
def test_impossible_proof_requests_are_refused_with_the_reason(
    village: StoredVillage, request_: Callable[[Store, str], object], message: str
) -> None:
    with pytest.raises(StorageError, match=message):
        request_(village.store, village.slug)


def test_a_tlog_proof_receipt_verifies_offline_against_the_latest_checkpoint(village: StoredVillage) -> None:
    (answer,) = village.append(village.kit.award())
    size = village.size()
    for index in (0, 7, answer.index):
        leaf_hash = merkle.hash_leaf(village.store.leaf(village.slug, index))
        text = village.store.tlog_proof(village.slug, index)
        checkpoint = verify_tlog_proof(text, leaf_hash, village.trusted(), origin=village.kit.origin)
        assert checkpoint.size == size
    with pytest.raises(ProofError, match="root mismatch"):
        verify_tlog_proof(village.store.tlog_proof(village.slug, 3), leaf_hash, village.trusted())
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        verify_tlog_proof(text, leaf_hash, [keys.parse_verifier_key(keys.verifier_key(
            village.kit.origin, keys.SigningKey.generate().public_bytes))])


def test_without_a_node_cache_proofs_read_only_the_logarithmically_many_nodes_of_their_plan(
    village: StoredVillage, engine: Engine, make_store: Callable[..., Store]
) -> None:
    """A proof costs the same few statements whatever the index, reads no entry, and asks the tree for
    exactly the perfect nodes ``merkle``'s plan names: at most 2*ceil(log2 n) rows by primary key."""
    kit = village.kit
    village.append(*kit.activity(9))
    size = village.size()
    assert size > 64
    bound = 2 * math.ceil(math.log2(size))
    uncached = make_store(node_cache_bytes=0)
    uncached.inclusion_proof(village.slug, 0, size)  # the village row and latest size, which a process keeps

    def read_by(request: Callable[[str, int, int], object], first: int, plan: merkle.ProofPlan) -> int:
        """How many SELECTs ``request(slug, first, size)`` makes, checking what it reads on the way."""
        with recorded_statements(engine) as statements:
            request(village.slug, first, size)
        selects = [(sql, params) for sql, params in statements if sql.lstrip().upper().startswith("SELECT")]
        assert not [sql for sql, _ in selects if "FROM entries" in sql], "a proof must not read entries"
        node_reads = [params for sql, params in selects if "FROM tree_nodes" in sql]
        if plan.ids:
            (params,) = node_reads
            assert len(params) <= 3 * len(plan.ids) <= 3 * bound  # at most (village, level, idx) per node
        else:
            assert len(node_reads) <= 1
        return len(selects)

    inclusion_costs = {
        read_by(uncached.inclusion_proof, index, merkle.inclusion_plan(index, size)) for index in range(size)
    }
    consistency_costs = {
        read_by(uncached.consistency_proof, first, merkle.consistency_plan(first, size))
        for first in range(1, size, 7)
    }
    assert len(inclusion_costs) == 1 and max(inclusion_costs) <= 4, inclusion_costs
    assert max(consistency_costs) <= 4, consistency_costs


def _level_ranges(statements: list[tuple[str, Any]]) -> list[tuple[int, int, int]]:
    """(level, begin, end) of each range of tree nodes read into the node cache; fails on any other
    read of tree nodes."""
    ranges = []
    for statement, params in statements:
        if "FROM tree_nodes" in statement:
            assert "idx >= " in statement, f"a tree node was read one by one: {statement}"
            values = params if isinstance(params, dict) else dict(zip(("village", "level", "begin", "end"), params))
            ranges.append((values["level"], values["begin"], values["end"]))
    return ranges


def test_a_process_reads_each_tree_node_once_into_its_cache_and_proves_as_without_it(
    village: StoredVillage, engine: Engine, make_store: Callable[..., Store]
) -> None:
    """Proofs from the node cache equal proofs read node by node; each node is read once per process
    (a level at a time, left to right), also while the log grows; a proved tree is proved again without
    reading a node."""
    kit, slug = village.kit, village.slug
    uncached, cached = make_store(node_cache_bytes=0), make_store()
    ranges: list[tuple[int, int, int]] = []
    for batch in (kit.activity(9), [kit.award("h2", 1 + n % 12) for n in range(40)]):
        village.append(*batch)
        size = village.size()
        inclusion = [uncached.inclusion_proof(slug, index, size) for index in range(size)]
        consistency = [uncached.consistency_proof(slug, first, size) for first in range(1, size)]
        with recorded_statements(engine) as statements:
            assert [cached.inclusion_proof(slug, index, size) for index in range(size)] == inclusion
            assert [cached.consistency_proof(slug, first, size) for first in range(1, size)] == consistency
        ranges += _level_ranges(statements)
        with recorded_statements(engine) as statements:
            cached.inclusion_proofs(slug, range(size), size)
        assert not tree_node_reads(statements)
    for level in {level for level, _, _ in ranges}:
        spans = sorted((begin, end) for at, begin, end in ranges if at == level)
        assert all(begin < end for begin, end in spans)
        assert [begin for begin, _ in spans] == [0] + [end for _, end in spans[:-1]], f"level {level}: {spans}"


def test_a_warmed_node_cache_holds_every_node_so_proofs_read_none(
    village: StoredVillage, engine: Engine, make_store: Callable[..., Store]
) -> None:
    village.append(*village.kit.activity(9))
    size = village.size()
    warmed, uncached = make_store(), make_store(node_cache_bytes=0)
    warmed.warm_node_cache()
    with recorded_statements(engine) as statements:
        proofs = warmed.inclusion_proofs(village.slug, range(size), size)
    assert not tree_node_reads(statements)
    assert proofs == uncached.inclusion_proofs(village.slug, range(size), size)


def test_a_node_cache_too_small_for_the_log_proves_the_rest_from_the_database(
    village: StoredVillage, make_store: Callable[..., Store]
) -> None:
    village.append(*village.kit.activity(9))
    size = village.size()
    small, uncached = make_store(node_cache_bytes=7 * merkle.HASH_SIZE), make_store(node_cache_bytes=0)
    assert small.inclusion_proofs(village.slug, range(size), size) == uncached.inclusion_proofs(
        village.slug, range(size), size)


# --- atomic batches ----------------------------------------------------------------------------------


def _forged_signature(entry: Entry) -> Entry:
    return dataclasses.replace(entry, signatures=(bytes(64),) + entry.signatures[1:])


def _one_entry_twice(kit: Kit) -> list[Entry]:
    award = kit.award("h2", 1)
    return [award, kit.award("h2", 2), award]


BAD_BATCHES: dict[str, tuple[Callable[[Kit], list[Entry]], type[EntryError], str, int]] = {
    "a stranger's entry": (
        lambda kit: [kit.award("h2", 1), kit.award("h2", 2), kit.award("h2", 3, by="stranger")],
        NotAuthorised, "is not registered in this village", 2,
    ),
    "a forged signature": (
        lambda kit: [kit.award("h2", 1), _forged_signature(kit.award("h2", 2)), kit.award("h2", 3)],
        BadSignature, "signature by the author key .* does not verify", 1,
    ),
    "an amount outside the rule": (
        lambda kit: [kit.award("h2", 11), kit.award("h2", 2)],
        RuleViolation, "amount 11 is outside rule M-01: between 1 and 10", 0,
    ),
    "a redemption beyond what the batch awarded": (
        lambda kit: [kit.award("h2", 4), kit.sign("points.redeem", {"household": "h2", "amount": 5, "item": "香皂", "quantity": 1})],
        RuleViolation, "household h2 has 4 morality points, cannot redeem 5", 1,
    ),
    "one entry twice": (
        _one_entry_twice,
        Replay, "appears twice in the batch", 2,
    ),
    "a conflicted member without a cosigner": (
        lambda kit: [kit.award("h2", 1), kit.award("h1", 2, by="chen")],
        NotAuthorised, "chen belongs to household h1", 1,
    ),
}


@pytest.mark.parametrize("case", BAD_BATCHES, ids=list(BAD_BATCHES))
def test_a_batch_with_one_bad_entry_writes_nothing_and_names_its_position(village: StoredVillage, case: str) -> None:
    build, error, message, position = BAD_BATCHES[case]
    before = snapshot(village)
    batch = build(village.kit)
    with pytest.raises(error, match=message) as raised:
        village.append(*batch)
    assert raised.value.position == position  # type: ignore[attr-defined]
    assert snapshot(village) == before
    # Nor in the store's cached state: the next entry lands where the refused batch would have started.
    (answer,) = village.append(village.kit.award("h2", 1))
    assert answer.index == before[0]
    assert audit(village).size == before[0] + 1


def test_an_empty_batch_is_refused(village: StoredVillage) -> None:
    with pytest.raises(EntryError, match="a batch needs at least one entry"):
        village.append()


# --- idempotent re-posts and replays -----------------------------------------------------------------


def test_reposting_the_same_signed_entries_returns_the_first_answer_and_writes_nothing(
    village: StoredVillage, make_store: Callable[..., Store]
) -> None:
    kit = village.kit
    single = kit.award("h2", 1)
    batch = [kit.award("h2", 2), kit.award("h3", 10, rule="C-01", by="grid2")]
    first_single = village.append(single)
    first_batch = village.append(*batch)
    village.append(kit.award("h2", 3))  # the log moves on: the answers must not
    before = snapshot(village)
    assert village.append(single) == first_single
    assert village.append(*batch) == first_batch
    assert make_store().append(village.slug, batch) == first_batch  # another server process, no cache
    assert snapshot(village) == before


def _impostor(kit: Kit, original: Entry) -> Entry:
    """A validly signed entry that reuses ``original``'s id for different content."""
    return kit.sign("points.award", {"household": "h2", "rule": "M-01", "amount": 9, "reason": "改过的"}, id=original.id)


def test_reusing_an_id_for_different_content_is_a_replay(village: StoredVillage) -> None:
    original = village.kit.award("h2", 1)
    village.append(original)
    before = snapshot(village)
    with pytest.raises(Replay, match=f"entry {original.id} reuses the id of a different entry already in the log") as raised:
        village.append(_impostor(village.kit, original))
    assert raised.value.position == 0  # type: ignore[attr-defined]
    assert snapshot(village) == before


def test_a_replay_inside_a_batch_names_the_entry_that_reuses_an_id(village: StoredVillage) -> None:
    kit = village.kit
    original = kit.award("h2", 1)
    village.append(original)
    before = snapshot(village)
    with pytest.raises(Replay, match=f"entry {original.id} reuses the id of a different entry") as raised:
        village.append(kit.award("h2", 2), _impostor(kit, original))
    assert raised.value.position == 1  # type: ignore[attr-defined]
    assert snapshot(village) == before


def test_a_batch_mixing_an_appended_entry_with_new_ones_is_a_replay(village: StoredVillage) -> None:
    kit = village.kit
    appended = kit.award("h2", 1)
    village.append(appended)
    before = snapshot(village)
    with pytest.raises(Replay, match="already in the log"):
        village.append(appended, kit.award("h2", 2))
    assert snapshot(village) == before


# --- append-only, enforced by the database -----------------------------------------------------------


@pytest.mark.parametrize("table", LOG_TABLES)
@pytest.mark.parametrize(
    ("action", "sql"),
    [("UPDATE", "UPDATE {table} SET village_id = village_id"), ("DELETE", "DELETE FROM {table}")],
)
def test_the_database_refuses_to_rewrite_the_log(
    village: StoredVillage, engine: Engine, table: str, action: str, sql: str
) -> None:
    before = snapshot(village)
    refused = pytest.raises(DBAPIError, match=f"{table} is append-only: {action} refused")
    with refused, engine.begin() as connection:
        connection.exec_driver_sql(sql.format(table=table))
    assert snapshot(village) == before
    village.store.check(village.slug)


@ON_POSTGRESQL
@pytest.mark.parametrize("table", LOG_TABLES)
def test_postgresql_refuses_to_truncate_the_log(village: StoredVillage, engine: Engine, table: str) -> None:
    refused = pytest.raises(DBAPIError, match=f"{table} is append-only: TRUNCATE refused")
    with refused, engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {table}")
    village.store.check(village.slug)


# --- derived tables ----------------------------------------------------------------------------------


def test_rebuild_reproduces_the_derived_tables_exactly(village: StoredVillage, engine: Engine) -> None:
    kit = village.kit
    entries = kit.activity(6)
    village.append(*entries[:5])
    for entry in entries[5:15]:
        village.append(entry)
    village.append(*entries[15:])
    store, slug = village.store, village.slug
    appended = store.derived_dump(slug)
    assert all(appended[name] for name in DERIVED_TABLES), "the activity touches every derived table"

    store.rebuild(slug)
    assert store.derived_dump(slug) == appended

    village_id = store.village_id(slug)
    with engine.begin() as connection:
        for table in DERIVED_TABLES:
            connection.exec_driver_sql(f"DELETE FROM {table} WHERE village_id = {village_id}")
    assert not any(store.derived_dump(slug).values())
    store.rebuild(slug)
    assert store.derived_dump(slug) == appended
    # The rebuilt state is the one an auditor recomputes, and appends carry on from it.
    assert audit(village).balances == _balances(store.state(slug).balances)
    (answer,) = village.append(kit.award("h2", 1))
    assert answer.index == len(entries) + SETUP_SIZE


def _balances(balances: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (account, ledger), amount in sorted(balances.items()):
        out.setdefault(ledger, {})[account] = amount
    return out


# --- self-check against a malicious operator ---------------------------------------------------------


def test_check_passes_on_an_honest_village(village: StoredVillage) -> None:
    village.append(*village.kit.activity(1))
    report = village.store.check(village.slug)
    assert report.size == village.size()
    assert report.root == opened(village, village.store.latest_checkpoint(village.slug)).root_hash
    assert report.checkpoints == 3


def failed_check(village: StoredVillage) -> VerificationError:
    """The error ``check`` raises, with its traceback dropped and garbage collected right away."""
    with pytest.raises(VerificationError) as raised:
        village.store.check(village.slug)
    error = raised.value
    del raised
    error.__traceback__ = None
    gc.collect()
    return error


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (flip_one_byte, r"entry {i} \(points\.award\): stored bytes do not match the leaf hash"),
        (delete_entry, r"entry {i} is missing \(the next stored entry is {j}\)"),
        (swap_entries, r"entry {i} \(points\.award\): stored bytes do not match the leaf hash"),
    ],
    ids=["one byte of a leaf changed", "an entry deleted", "two entries swapped"],
)
def test_check_names_the_entry_an_operator_rewrote_behind_the_triggers(
    village: StoredVillage, engine: Engine, backend: str, tamper: Callable[[Connection, int, int], None], message: str
) -> None:
    answers = [village.append(village.kit.award("h2", amount))[0] for amount in (2, 4, 6, 8)]
    index = answers[1].index
    with behind_the_triggers(engine, backend) as connection:
        tamper(connection, village.store.village_id(village.slug), index)
    error = failed_check(village)
    assert re.match(message.format(i=index, j=index + 1), str(error)), str(error)
    assert error.index == index


def test_check_catches_a_leaf_replaced_with_its_hashes_by_the_signed_roots(
    village: StoredVillage, engine: Engine, backend: str
) -> None:
    """A careful operator replaces an entry by another validly signed one and updates its leaf hash and
    level-0 tree node to match: the rows agree with each other, but not with the signed checkpoints."""
    kit = village.kit
    answers = [village.append(kit.award("h2", amount))[0] for amount in (2, 4, 6)]
    victim = answers[1]
    original = village.store.leaf(village.slug, victim.index)
    forged = kit.sign(
        "points.award", {"household": "h2", "rule": "M-01", "amount": 10, "reason": "垃圾分类到位"},
        id=json.loads(original)["entry"]["id"],
    )
    forged_hash = merkle.hash_leaf(forged.leaf)
    village_id = village.store.village_id(village.slug)
    with behind_the_triggers(engine, backend) as connection:
        sql(connection, "UPDATE entries SET leaf = :leaf, leaf_hash = :hash, amount = 10 WHERE village_id = :v AND idx = :i",
             leaf=forged.leaf, hash=forged_hash, v=village_id, i=victim.index)
        sql(connection, "UPDATE tree_nodes SET hash = :hash WHERE village_id = :v AND level = 0 AND idx = :i",
             hash=forged_hash, v=village_id, i=victim.index)
    error = failed_check(village)
    assert str(error).startswith(f"signed checkpoint of size {victim.tree_size}: root mismatch"), str(error)
    assert error.index == victim.tree_size


def test_a_failed_check_leaves_no_database_cursor_open(
    village: StoredVillage, engine: Engine, backend: str
) -> None:
    village.append(village.kit.award("h2", 2), village.kit.award("h2", 4))
    with behind_the_triggers(engine, backend) as connection:
        delete_entry(connection, village.store.village_id(village.slug), SETUP_SIZE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = failed_check(village)
    assert error.index == SETUP_SIZE
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# --- export ------------------------------------------------------------------------------------------


def test_the_export_verifies_and_agrees_with_the_store_on_root_and_balances(village: StoredVillage) -> None:
    village.append(*village.kit.activity(2))
    report = audit(village)
    latest = opened(village, village.store.latest_checkpoint(village.slug))
    assert (report.village, report.origin, report.size) == (village.slug, village.kit.origin, village.size())
    assert report.root == latest.root_hash
    assert report.checkpoints == 3
    assert report.balances == _balances(village.store.state(village.slug).balances)
    assert report.attachments == [EVIDENCE]  # the evidence photo of the M-05 award


# --- personal data -----------------------------------------------------------------------------------

PERSONAL = {"head": "王大明", "id_number": "330182199001011234", "phone": "13800000000", "address": "上塘村 12 号"}


def test_put_private_returns_the_commitment_the_household_registers_with(village: StoredVillage) -> None:
    store, kit = village.store, village.kit
    commitment = store.put_private(village.slug, "h5", PERSONAL)
    village.append(kit.sign("household.register", {**kit.household_body("h5", "g1"), "commitment": commitment}))
    assert store.state(village.slug).households["h5"].commitment == commitment
    private = store.private(village.slug, "h5")
    assert private is not None
    salt, data = private
    assert data == PERSONAL and len(salt) >= 16
    assert household_commitment(salt, data) == commitment
    assert store.put_private(village.slug, "h6", PERSONAL) != commitment, "a fresh salt every time"


def test_erasing_personal_data_keeps_the_village_verifiable_with_the_same_root(village: StoredVillage) -> None:
    store, kit = village.store, village.kit
    commitment = store.put_private(village.slug, "h5", PERSONAL)
    village.append(kit.sign("household.register", {**kit.household_body("h5", "g1"), "commitment": commitment}))
    before = b"".join(store.export(village.slug))
    root = audit(village).root
    assert store.erase_private(village.slug, "h5") is True
    assert store.private(village.slug, "h5") is None
    assert store.erase_private(village.slug, "h5") is False
    after = b"".join(store.export(village.slug))
    assert audit(village).root == root
    assert store.state(village.slug).households["h5"].commitment == commitment
    for value in PERSONAL.values():
        assert value.encode() not in before + after, "personal data never leaves the private table"


# --- log key rotation --------------------------------------------------------------------------------


def test_after_a_log_key_rotation_new_checkpoints_are_signed_by_the_new_key(
    village: StoredVillage, make_store: Callable[..., Store]
) -> None:
    store, kit = village.store, village.kit
    other_server = make_store()
    other_server.append(village.slug, [kit.award("h2", 1)])  # it has the old signing key cached
    (old,) = store.verifier_keys(village.slug)
    new = store.rotate_log_key(village.slug, keys.SigningKey.generate())
    assert store.verifier_keys(village.slug) == [old, new]
    assert new.startswith(kit.origin + "+")

    answers = [store.append(village.slug, [kit.award("h2", 2)])[0], other_server.append(village.slug, [kit.award("h2", 3)])[0]]
    for answer in answers:
        open_checkpoint(answer.checkpoint, [keys.parse_verifier_key(new)], origin=kit.origin)
        with pytest.raises(CheckpointError, match="no signature by a trusted key"):
            open_checkpoint(answer.checkpoint, [keys.parse_verifier_key(old)])

    report = audit(village, [keys.parse_verifier_key(old), keys.parse_verifier_key(new)])
    assert report.size == village.size() and report.checkpoints == 5
    rotated_at = answers[0].tree_size
    with pytest.raises(VerificationError, match="checkpoint after 1 entries: no signature by a trusted key"):
        audit(village, [keys.parse_verifier_key(new)])
    with pytest.raises(VerificationError, match=f"checkpoint after {rotated_at} entries: no signature by a trusted key"):
        audit(village, [keys.parse_verifier_key(old)])


# --- concurrency -------------------------------------------------------------------------------------

WRITERS = 4
APPENDS_PER_WRITER = 5


def _writer_batches(kit: Kit, writer: int) -> list[list[Entry]]:
    """Single entries and a pair, from several members, all valid in any interleaving."""
    awards = [kit.award("h2", 1 + (writer + n) % 10) for n in range(APPENDS_PER_WRITER - 1)]
    credit = kit.sign("points.award", {"household": "h3", "rule": "C-01", "amount": 10, "reason": "按时还贷"}, by="grid2")
    return [[awards[0]], [awards[1], credit], *[[award] for award in awards[2:]]]


def test_threads_with_their_own_stores_append_a_consistent_history(
    village: StoredVillage, open_engine: Callable[[], Engine], make_store: Callable[..., Store]
) -> None:
    start = village.size()
    work = [_writer_batches(village.kit, writer) for writer in range(WRITERS)]
    stores = [make_store(open_engine()) for _ in range(WRITERS)]
    answers: list[list[Appended]] = [[] for _ in range(WRITERS)]
    failures: list[str] = []
    ready = threading.Barrier(WRITERS)

    def write(writer: int) -> None:
        try:
            ready.wait()
            for batch in work[writer]:
                answers[writer] += stores[writer].append(village.slug, batch)
        except Exception:  # noqa: BLE001  (reported by the test thread below)
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures[0]
    assert_consistent_history(village, start, [a for mine in answers for a in mine])


def test_batches_posted_together_in_one_process_share_one_commit_and_fail_alone(village: StoredVillage) -> None:
    """Group commit: batches that wait while another thread writes land in one transaction under one
    checkpoint; a refused batch, a batch repeated in the group and a batch reusing a group member's id
    each get their own answer, and the history stays consistent."""
    kit, store = village.kit, village.store
    start = village.size()
    good = [[kit.award("h2", 1)], [kit.award("h2", 2), kit.award("h3", 10, rule="C-01", by="grid2")], [kit.award("h2", 3)]]
    refused = [kit.award("h2", 11)]  # outside rule M-01
    impostor = [_impostor(kit, good[0][0])]
    posted = [good[0], refused, good[1], list(good[0]), impostor, good[2]]
    answers: list[list[Appended] | Exception | None] = [None] * len(posted)

    def post(position: int) -> None:
        try:
            answers[position] = store.append(village.slug, posted[position])
        except Exception as exc:  # noqa: BLE001  (checked by the test thread below)
            answers[position] = exc

    writer = store._writer(village.slug)
    threads = [threading.Thread(target=post, args=(position,)) for position in range(len(posted))]
    with writer.lock:  # as if another batch were being written: all six queue behind it, in this order
        for queued, thread in enumerate(threads, start=1):
            thread.start()
            while len(writer._queue) < queued:
                time.sleep(0.005)
    for thread in threads:
        thread.join(timeout=60)
    assert isinstance(answers[1], RuleViolation) and answers[1].position == 0  # type: ignore[attr-defined]
    assert isinstance(answers[4], Replay)
    assert answers[3] == answers[0]
    landed = [a for position in (0, 2, 5) for a in answers[position]]  # type: ignore[union-attr]
    assert [a.index for a in landed] == list(range(start, start + 4))
    assert {a.tree_size for a in landed} == {start + 4}  # one checkpoint for the group
    assert village.size() == start + 4
    assert_consistent_history(village, start, landed)


def append_from_another_process(
    url: str, slug: str, batches: list[list[bytes]], ready: Any, results: Any
) -> None:
    """A separate server process: its own engine from the URL, its own Store; reports what it got."""
    from ledger.entries import decode_leaf

    engine = make_engine(url)
    try:
        store = Store(engine, log_key_passphrase=LOG_KEY_PASSPHRASE)
        ready.wait()
        answers = [a for batch in batches for a in store.append(slug, [decode_leaf(leaf) for leaf in batch])]
        results.put(("ok", answers))
    except Exception:  # noqa: BLE001  (reported to the test process)
        results.put(("failed", traceback.format_exc()))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_processes_appending_at_once_make_a_consistent_history(village: StoredVillage, database_url: str) -> None:
    start = village.size()
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(WRITERS)
    results = context.Queue()
    processes = [
        context.Process(
            target=append_from_another_process,
            args=(database_url, village.slug, [[e.leaf for e in batch] for batch in _writer_batches(village.kit, writer)], ready, results),
        )
        for writer in range(WRITERS)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=180) for _ in processes]
    except queue.Empty:
        pytest.fail("a writer process did not report within 180 s")
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.exitcode is None:
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    failed = [detail for outcome, detail in reports if outcome != "ok"]
    assert not failed, failed[0]
    assert [process.exitcode for process in processes] == [0] * WRITERS
    assert_consistent_history(village, start, [a for _, answers in reports for a in answers])


# --- schema ------------------------------------------------------------------------------------------


def test_the_migrated_schema_is_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_the_latest_migration_goes_down_and_up_again_keeping_the_village(village: StoredVillage, engine: Engine) -> None:
    """A village of the rules before the checks and balances comes back exactly; one of rules 2, whose
    derived columns the older schema has no room for, comes back exactly once rebuilt from its entries."""
    old = StoredVillage.create(village.store, Kit("oldvillage", rules=1))
    before = snapshot(village), snapshot(old)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    upgrade(engine)
    store = Store(engine, log_key_passphrase=LOG_KEY_PASSPHRASE)  # a server started on the upgraded database
    store.rebuild(village.slug)
    assert (snapshot(village), snapshot(old)) == before
    for slug in (village.slug, old.slug):
        store.check(slug)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


# --- PostgreSQL connections --------------------------------------------------------------------------


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def end_session(postgres_admin: Engine, pid: int) -> None:
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")


@ON_POSTGRESQL
def test_a_pooled_connection_the_server_ended_while_idle_is_replaced_before_use(
    engine: Engine, postgres_admin: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_SECONDS", 0.05)
    ended = backend_pid(engine)
    end_session(postgres_admin, ended)
    time.sleep(0.1)
    assert backend_pid(engine) != ended  # no error: the ping found it dead and the pool opened another


@ON_POSTGRESQL
def test_a_connection_ended_while_in_steady_use_fails_one_statement_and_the_pool_replaces_it(
    engine: Engine, postgres_admin: Engine
) -> None:
    ended = backend_pid(engine)  # back in the pool a moment ago: not pinged on its next use
    end_session(postgres_admin, ended)
    with pytest.raises(DBAPIError) as failed, engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    assert failed.value.connection_invalidated
    assert backend_pid(engine) != ended
