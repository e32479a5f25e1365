"""The benchmark village: 2,000 households and a reproducible stream of signed entries.

The content of every entry (kind, household, amount, id, time) comes from ``random.Random(seed)``.
``keys.SigningKey`` has no constructor from raw bytes, so member keys are generated once per cached data
set and kept beside it, encrypted; a re-run signs nothing and replays byte-identical entries.

Entries are built the way ``ledger.entries.sign_entry`` builds them (``make_unsigned``, the signing
message, canonical JSON) but without its marshmallow validation, which costs more than a millisecond an
entry here and would make a million-entry data set take an hour to make and to reload. The shortcut is
checked: a sample of entries must equal ``decode_leaf(entry.leaf)``, and ``Store.append`` and
``verify_bundle`` re-check every signature and every authorisation rule anyway.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import keys
from ledger import bundle
from ledger.canonical import b64decode, b64encode, canonical_json
from ledger.entries import Entry, decode_leaf, make_unsigned, signing_message
from tests.kit import HOUSEHOLDS as KIT_HOUSEHOLDS
from tests.kit import Kit

SLUG = "bench"
HOUSEHOLDS = 2000
BATCH = 1000
KEY_PASSPHRASE = b"bench-member-keys"  # the cached member keys are test keys; this only satisfies keys/
START = datetime(2026, 1, 1, tzinfo=UTC)
# The bench replays a simulated timeline (entry n is dated START + n seconds), so its servers accept any
# distance from their own clock; the ledger's own rule (times never go backwards) still holds throughout.
BENCH_CLOCK_SKEW = timedelta(days=365 * 100)
GRID_WORKERS = {"g1": "grid1", "g2": "grid2"}
GOODS = ("香皂", "洗衣粉", "食用油", "毛巾", "酱油")


def entry_from_wire(wire: Mapping[str, Any], leaf: bytes) -> Entry:
    """The ``Entry`` of a signed entry whose canonical bytes are ``leaf`` (no schema validation)."""
    unsigned = wire["entry"]
    cosigner = unsigned.get("cosigner")
    return Entry(
        kind=unsigned["kind"],
        village=unsigned["village"],
        id=unsigned["id"],
        time=unsigned["time"],
        author=b64decode(unsigned["author"]),
        cosigner=b64decode(cosigner) if cosigner else None,
        body=unsigned["body"],
        signatures=tuple(b64decode(s["sig"]) for s in wire["signatures"]),
        unsigned=unsigned,
        leaf=leaf,
    )


def entry_from_leaf(leaf: bytes) -> Entry:
    return entry_from_wire(json.loads(leaf), leaf)


def require_same_as_library(entries: list[Entry], every: int) -> None:
    """Every ``every``-th entry must be exactly what ``ledger.entries.decode_leaf`` makes of its bytes."""
    for entry in entries[::every]:
        if decode_leaf(entry.leaf) != entry:
            raise AssertionError(f"bench entry {entry.id} differs from decode_leaf of its own bytes")


class Signer:
    """Signs entries for the kit's members; ids come from ``rng``; times start ``first_second`` after START
    and tick ``step`` seconds per entry (the village's timeline is simulated: see ``BENCH_CLOCK_SKEW``)."""

    def __init__(self, kit: Kit, rng: random.Random, first_second: int = 0, step: int = 1) -> None:
        self.kit, self.rng, self.second, self.step = kit, rng, first_second, step

    def sign(self, kind: str, body: Mapping[str, Any], *, by: str = "founder", cosigner: str | None = None) -> Entry:
        unsigned = make_unsigned(
            kind=kind,
            village=self.kit.slug,
            body=body,
            author=self.kit.public(by),
            cosigner=self.kit.public(cosigner) if cosigner else None,
            time=(START + timedelta(seconds=self.second)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            entry_id=f"{self.rng.getrandbits(128):032x}",
        )
        self.second += self.step
        message = signing_message(unsigned)
        signers = [by] if cosigner is None else [by, cosigner]
        wire = {"entry": unsigned, "signatures": [
            {"key": self.kit.key_b64(name), "sig": b64encode(self.kit.keys[name].sign(message))} for name in signers
        ]}
        return entry_from_wire(wire, canonical_json(wire))


def household_ids() -> list[str]:
    return [f"h{n}" for n in range(1, HOUSEHOLDS + 1)]


def grid_of(household: str) -> str:
    return KIT_HOUSEHOLDS.get(household) or ("g1" if int(household[1:]) % 2 else "g2")


class Activity:
    """Valid points entries in a realistic mix, tracking just enough state to keep every one valid:
    awards (by the committee or the household's grid worker), credit awards, deductions, redemptions
    within the household's balance, and reversals of earlier awards by the supervisor."""

    def __init__(self, signer: Signer, rng: random.Random) -> None:
        self.signer, self.rng = signer, rng
        self.households = household_ids()
        self.morality: dict[str, int] = {}
        self.reversible: list[tuple[str, str, int]] = []  # (entry id, household, amount) of awards

    def next(self) -> Entry:
        roll = self.rng.random()
        household = self.rng.choice(self.households)
        if roll < 0.15:
            return self.credit(household)
        if roll < 0.25:
            return self._deduct(household)
        if roll < 0.40:
            return self._redeem(household) if self.morality.get(household, 0) > 0 else self.award(household)
        if roll < 0.45 and self.reversible:
            return self._reverse()
        return self.award(household)

    def award(self, household: str) -> Entry:
        amount = self.rng.randint(1, 10)
        by = self.rng.choice(("founder", GRID_WORKERS[grid_of(household)]))
        entry = self.signer.sign(
            "points.award",
            {"household": household, "rule": "M-01", "amount": amount, "reason": "垃圾分类到位"},
            by=by,
        )
        self.morality[household] = self.morality.get(household, 0) + amount
        self.reversible.append((entry.id, household, amount))
        return entry

    def credit(self, household: str) -> Entry:
        return self.signer.sign(
            "points.award",
            {"household": household, "rule": "C-01", "amount": 10, "reason": "按时还贷"},
            by=GRID_WORKERS[grid_of(household)],
        )

    def _deduct(self, household: str) -> Entry:
        self.morality[household] = self.morality.get(household, 0) - 5
        return self.signer.sign(
            "points.deduct", {"household": household, "rule": "D-01", "amount": 5, "reason": "柴草乱堆"}
        )

    def _redeem(self, household: str) -> Entry:
        amount = self.rng.randint(1, min(self.morality[household], 30))
        self.morality[household] -= amount
        return self.signer.sign(
            "points.redeem",
            {"household": household, "amount": amount, "item": self.rng.choice(GOODS), "quantity": 1},
        )

    def _reverse(self) -> Entry:
        position = self.rng.randrange(len(self.reversible))
        self.reversible[position], self.reversible[-1] = self.reversible[-1], self.reversible[position]
        entry_id, household, amount = self.reversible.pop()
        self.morality[household] -= amount
        return self.signer.sign("points.reverse", {"entry": entry_id, "reason": "登记有误"}, by="supervisor")


def village_entries(kit: Kit, seed: int, size: int) -> Iterator[Entry]:
    """The first ``size`` entries of the village: genesis, the kit's standard setup (grids, members,
    rules, households h1-h3), households h4..h2000, then activity."""
    rng = random.Random(seed)
    signer = Signer(kit, rng)
    name_of: dict[bytes | None, str] = {key.public_bytes: name for name, key in kit.keys.items()}  # .get(cosigner or None)
    setup = [(e.kind, e.unsigned["body"], name_of[e.author], name_of.get(e.cosigner)) for e in (kit.genesis(), *kit.setup_entries())]
    setup += [("household.register", kit.household_body(h, grid_of(h)), "founder", None) for h in household_ids()[3:]]
    activity = Activity(signer, rng)
    for count in range(size):
        if count < len(setup):
            kind, body, by, cosigner = setup[count]
            yield signer.sign(kind, body, by=by, cosigner=cosigner)
        else:
            yield activity.next()


def extra_entries(kit: Kit, seed: int, label: str, count: int, *, after: int, credit_share: float = 0.2) -> list[Entry]:
    """``count`` fresh awards (morality and credit, always valid in any order) for appends once the log
    holds ``after`` entries, all dated then (so the village's later entries do not go back in time); the
    same (seed, label) gives the same entries."""
    rng = random.Random(f"{seed}/{label}")
    activity = Activity(Signer(kit, rng, first_second=after, step=0), rng)
    households = household_ids()
    return [
        activity.credit(h) if rng.random() < credit_share else activity.award(h)
        for h in (rng.choice(households) for _ in range(count))
    ]


@dataclass(frozen=True)
class Village:
    """A cached data set: the kit (member keys) and a bundle-format file of ``size`` signed entries."""

    kit: Kit
    path: Path
    size: int
    seed: int

    def entries(self) -> Iterator[Entry]:
        with self.path.open("rb") as lines:
            next(lines)  # the header
            for line in lines:
                yield entry_from_leaf(line.rstrip(b"\n"))

    def batches(self, size: int = BATCH) -> Iterator[list[Entry]]:
        batch: list[Entry] = []
        for entry in self.entries():
            batch.append(entry)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def load_village(cache: Path, seed: int, size: int, *, progress: Any = print) -> Village:
    """The data set for (seed, size) from ``cache``, generating and caching it first if needed."""
    path = cache / f"village-rules2-seed{seed}-n{size}.vlbundle"
    key_file = path.with_suffix(".keys.json")
    kit = Kit(SLUG, origin=f"villageledger.bench/{SLUG}")
    if path.exists() and key_file.exists():
        pems = json.loads(key_file.read_text())
        kit.keys = {
            name: keys.SigningKey.from_encrypted_pem(pem.encode(), KEY_PASSPHRASE)
            for name, pem in pems.items()
        }
        return Village(kit, path, size, seed)
    cache.mkdir(parents=True, exist_ok=True)
    progress(f"generating the {size:,}-entry village (seed {seed}) into {path}")
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        out.write(
            bundle.header_line(village=SLUG, origin=kit.origin, log_keys=[], created="2026-01-01T00:00:00Z")
        )
        sample: list[Entry] = []
        for count, entry in enumerate(village_entries(kit, seed, size)):
            out.write(bundle.entry_line(entry.leaf))
            if count % 997 == 0:
                sample.append(entry)
    require_same_as_library(sample, 1)
    pems = {name: key.to_encrypted_pem(KEY_PASSPHRASE).decode() for name, key in kit.keys.items()}
    key_file.write_text(json.dumps(pems))
    os.replace(partial, path)
    return Village(kit, path, size, seed)
