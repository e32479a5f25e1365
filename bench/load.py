"""The load client, run as its own process: ``python -m bench.load SPEC.json`` prints results as JSON.

Small asyncio HTTP/1.1 client, one keep-alive connection per simulated client. Every load is bounded:
no new request starts after ``seconds``, and append loads stop when their prepared entries run out.
A client still waiting ``GRACE`` seconds after the deadline is abandoned and counted as unfinished.
Nothing is taken on trust (as Tessera's hammer does):
- ``append``: the answer's checkpoint must be signed by the log key and its inclusion proofs must prove
  each posted entry (by the leaf hash the client computed) under that checkpoint's root;
- ``read``: each reader trusts one checkpoint at a time; a new checkpoint must be signed and, if larger,
  proven consistent with the trusted one before it replaces it; every inclusion proof must prove the
  leaf the reader already knows under the trusted root;
- ``page``: a household's page (``GET /h/<token>``) must be HTML whose proof context holds the latest
  checkpoint, signed by the log key, and whose every record is the household's and is proven by its
  inclusion proof under that checkpoint's root (what the phone checks); the size of each page is kept;
- ``hello``: the body must be ``hello``.
A failed check is an error, counted and quoted in the results.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import keys
from ledger import merkle
from ledger.canonical import b64decode
from ledger.note import Checkpoint, open_checkpoint

PROOFS_PER_CHECKPOINT = 4  # a reader's mix: one checkpoint read, then four inclusion proofs
GRACE = 120.0  # seconds a request started before the deadline may take before it is abandoned
PROOF_CONTEXT = re.compile(rb'<script type="application/json" id="proof-context">(.*?)</script>')
PAGE_ENTRY = re.compile(rb'<li class="entry" data-index="(\d+)" data-leaf="([^"]*)" data-proof="([^"]*)"')


class CheckFailed(Exception):
    pass


class Connection:
    """One HTTP/1.1 keep-alive connection, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise CheckFailed(f"{method} {path}: answer without Content-Length")
        data = await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    entries: int = 0
    errors: int = 0
    unfinished: int = 0  # clients still waiting for an answer GRACE seconds after the deadline
    first_errors: list[str] = field(default_factory=list)
    checks: dict[str, int] = field(default_factory=dict)
    largest: dict[str, int] = field(default_factory=dict)  # bytes of the largest answer body of a kind

    def record(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def sized(self, kind: str, size: int) -> None:
        self.largest[kind] = max(self.largest.get(kind, 0), size)

    def checked(self, what: str, count: int = 1) -> None:
        self.checks[what] = self.checks.get(what, 0) + count

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(message)


async def _timed(
    connection: Connection,
    results: Results,
    kind: str,
    method: str,
    path: str,
    body: bytes = b"",
    expect: int = 200,
    content_type: str | None = None,
) -> bytes:
    start = time.perf_counter()
    status, headers, data = await connection.request(method, path, body)
    results.record(kind, time.perf_counter() - start)
    if status != expect:
        raise CheckFailed(f"{method} {path}: HTTP {status} (expected {expect}): {data[:300]!r}")
    answered = headers.get("content-type", "")
    if content_type is not None and answered.split(";")[0].strip() != content_type:
        raise CheckFailed(f"{method} {path}: Content-Type {answered!r} (expected {content_type})")
    return data


async def hello(connection: Connection, results: Results, spec: dict[str, Any], deadline: float) -> None:
    while time.perf_counter() < deadline:
        if await _timed(connection, results, "hello", "GET", "/hello") != b"hello":
            raise CheckFailed("hello route answered something else")
        results.checked("hello bodies")


def _open(note: str, trusted: list[keys.NoteVerifier]) -> Checkpoint:
    return open_checkpoint(note, trusted)


async def append(
    connection: Connection,
    results: Results,
    spec: dict[str, Any],
    deadline: float,
    work: Iterator[tuple[bytes, list[bytes]]],
    trusted: list[keys.NoteVerifier],
) -> None:
    path = f"/api/v1/villages/{spec['village']}/entries"
    for body, leaf_hashes in work:
        if time.perf_counter() >= deadline:
            return
        answer = json.loads(await _timed(connection, results, "append", "POST", path, body, expect=201))
        checkpoint = _open(answer["checkpoint"], trusted)
        if checkpoint.size != answer["tree_size"]:
            raise CheckFailed(f"tree_size {answer['tree_size']} but the checkpoint says {checkpoint.size}")
        if len(answer["appended"]) != len(leaf_hashes):
            raise CheckFailed(f"posted {len(leaf_hashes)} entries, {len(answer['appended'])} acknowledged")
        for item, leaf_hash in zip(answer["appended"], leaf_hashes):
            proof = [b64decode(h, length=32) for h in item["inclusion_proof"]]
            merkle.verify_inclusion(item["index"], checkpoint.size, leaf_hash, proof, checkpoint.root_hash)
        results.entries += len(leaf_hashes)
        results.checked("signed checkpoints")
        results.checked("inclusion proofs", len(leaf_hashes))


async def read(
    connection: Connection,
    results: Results,
    spec: dict[str, Any],
    deadline: float,
    leaf_hashes: bytes,
    trusted: list[keys.NoteVerifier],
    rng: random.Random,
) -> None:
    base = f"/api/v1/villages/{spec['village']}/log"
    known = len(leaf_hashes) // 32
    state = _open(spec["trusted_checkpoint"], trusted)
    while time.perf_counter() < deadline:
        latest = _open(
            (await _timed(connection, results, "checkpoint", "GET", f"{base}/checkpoint")).decode(), trusted
        )
        results.checked("signed checkpoints")
        if latest.size < state.size:
            raise CheckFailed(f"checkpoint went back from size {state.size} to {latest.size}")
        if latest.size > state.size:
            data = await _timed(
                connection,
                results,
                "consistency",
                "GET",
                f"{base}/proof/consistency?first={state.size}&second={latest.size}",
            )
            proof = [b64decode(h, length=32) for h in json.loads(data)["hashes"]]
            merkle.verify_consistency(state.size, latest.size, proof, state.root_hash, latest.root_hash)
            results.checked("consistency proofs")
            state = latest
        elif latest.root_hash != state.root_hash:
            raise CheckFailed(f"two different roots signed for size {state.size}")
        size = min(state.size, known)
        for _ in range(PROOFS_PER_CHECKPOINT):
            index = rng.randrange(size)
            data = await _timed(
                connection,
                results,
                "inclusion",
                "GET",
                f"{base}/proof/inclusion?index={index}&tree_size={state.size}",
            )
            proof = [b64decode(h, length=32) for h in json.loads(data)["hashes"]]
            merkle.verify_inclusion(
                index, state.size, leaf_hashes[32 * index : 32 * index + 32], proof, state.root_hash
            )
            results.checked("inclusion proofs")


async def page(
    connection: Connection,
    results: Results,
    spec: dict[str, Any],
    deadline: float,
    plates: list[tuple[str, str]],
    trusted: list[keys.NoteVerifier],
    rng: random.Random,
) -> None:
    """Household pages of random households; the log does not grow meanwhile, so every page must carry
    the checkpoint that was latest when the load began (``spec["checkpoint"]``). With ``spec["think"]``
    > 0 the client is a villager who reads each page for a random time of that mean (exponential) before
    opening the next; with 0 it asks again at once (the server saturated)."""
    expected = spec["checkpoint"]
    checkpoint = _open(expected, trusted)
    think = float(spec.get("think", 0))
    while time.perf_counter() < deadline:
        if think:
            await asyncio.sleep(min(rng.expovariate(1 / think), max(0.0, deadline - time.perf_counter())))
            if time.perf_counter() >= deadline:
                break
        household, token = rng.choice(plates)
        html = await _timed(connection, results, "page", "GET", f"/h/{token}", content_type="text/html")
        results.sized("page", len(html))
        where = f"household page of {household}"
        found = PROOF_CONTEXT.search(html)
        if found is None:
            raise CheckFailed(f'{where}: no proof context (id="proof-context")')
        context = json.loads(found.group(1))
        if context.get("checkpoint") != expected:
            raise CheckFailed(
                f"{where}: proof context holds another checkpoint: {context.get('checkpoint')!r:.200}"
            )
        if context.get("key") not in spec["log_keys"]:
            raise CheckFailed(f"{where}: proof context names key {context.get('key')!r}, not a log key")
        records = PAGE_ENTRY.findall(html)
        for index, leaf64, proof64 in records:
            leaf = b64decode(leaf64.decode())
            owner = json.loads(leaf)["entry"]["body"].get("household", household)  # a reversal names none
            if owner != household:
                raise CheckFailed(f"{where}: shows entry {int(index)} of household {owner}")
            proof = [b64decode(h, length=32) for h in proof64.decode().split()]
            merkle.verify_inclusion(
                int(index), checkpoint.size, merkle.hash_leaf(leaf), proof, checkpoint.root_hash
            )
        results.checked("household pages")
        results.checked("inclusion proofs", len(records))


async def _client(
    number: int, spec: dict[str, Any], results: Results, deadline: float, shared: dict[str, Any]
) -> None:
    connection = Connection(spec["port"])
    try:
        if spec["workload"] == "hello":
            await hello(connection, results, spec, deadline)
        elif spec["workload"] == "append":
            await append(connection, results, spec, deadline, shared["work"], shared["trusted"])
        elif spec["workload"] == "page":
            rng = random.Random(f"{spec['seed']}/page/{number}")
            await page(connection, results, spec, deadline, shared["plates"], shared["trusted"], rng)
        else:
            rng = random.Random(f"{spec['seed']}/reader/{number}")
            await read(connection, results, spec, deadline, shared["leaf_hashes"], shared["trusted"], rng)
    except Exception as exc:  # noqa: BLE001 - every failure is a result to report, not a crash
        results.error(f"client {number}: {type(exc).__name__}: {exc}")
    finally:
        connection.close()


def _work(path: str) -> Iterator[tuple[bytes, list[bytes]]]:
    with open(path, "rb") as lines:
        for line in lines:
            item = json.loads(line)
            yield item["body"].encode(), [bytes.fromhex(h) for h in item["leaf_hashes"]]


def shared_inputs(spec: dict[str, Any]) -> dict[str, Any]:
    """What every client shares, read before the clock starts: trusted keys, prepared requests, leaves."""
    shared: dict[str, Any] = {"trusted": [keys.parse_verifier_key(k) for k in spec.get("log_keys", [])]}
    if spec["workload"] == "append":
        shared["work"] = iter(list(_work(spec["work_file"])))
    if spec["workload"] == "read":
        with open(spec["leaf_hashes_file"], "rb") as handle:
            shared["leaf_hashes"] = handle.read()
    if spec["workload"] == "page":
        with open(spec["plates_file"]) as lines:
            shared["plates"] = [(item["household"], item["token"]) for item in map(json.loads, lines)]
    return shared


async def run(spec: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    results = Results()
    cpu_start, start = _cpu(), time.perf_counter()
    deadline = start + spec["seconds"]
    clients = [
        asyncio.create_task(_client(n, spec, results, deadline, shared)) for n in range(spec["clients"])
    ]
    _, pending = await asyncio.wait(clients, timeout=spec["seconds"] + GRACE)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    results.unfinished = len(pending)
    return {
        "wall": time.perf_counter() - start,
        "entries": results.entries,
        "errors": results.errors,
        "unfinished": results.unfinished,
        "first_errors": results.first_errors,
        "checks": results.checks,
        "largest": results.largest,
        "latencies": results.latencies,
        "client_cpu": _cpu() - cpu_start,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        loaded = json.load(handle)
    print(json.dumps(asyncio.run(run(loaded, shared_inputs(loaded)))))
