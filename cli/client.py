"""A small client of the villageledger API that trusts nothing it is told.

It signs entries locally (the private key never leaves this process), posts them, and checks that the
answer is a checkpoint signed by the village's log key whose tree includes each entry, before returning
an offline receipt (C2SP tlog-proof) per entry. Standard library HTTP only: it runs on the base install.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import keys
from ledger import merkle
from ledger.canonical import b64decode
from ledger.entries import Entry
from ledger.errors import LedgerError
from ledger.note import Checkpoint, TlogProof, open_checkpoint


class ApiError(LedgerError):
    """The server answered with a problem document (or not at all)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        detail = problem.get("detail") or problem.get("title") or "request failed"
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.problem = status, problem


@dataclass(frozen=True)
class Receipt:
    entry_id: str
    index: int
    checkpoint: Checkpoint
    proof: TlogProof


class LedgerClient:
    def __init__(self, base_url: str, *, log_keys: Sequence[str] = (), timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.trusted = [keys.parse_verifier_key(k) for k in log_keys]
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                problem = json.loads(exc.read())
            except ValueError:
                problem = {"title": exc.reason}
            raise ApiError(exc.code, problem) from exc
        except urllib.error.URLError as exc:
            raise ApiError(0, {"title": f"cannot reach {self.base_url}: {exc.reason}"}) from exc

    def village(self, village: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/v1/villages/{quote(village)}")
        return result

    def trust_server_keys(self, village: str) -> list[str]:
        """Trust on first use: adopt the log keys the server lists (say so to the user)."""
        listed: list[str] = self.village(village)["log_keys"]
        self.trusted = [keys.parse_verifier_key(k) for k in listed]
        return listed

    def post(self, village: str, entries: Sequence[Entry]) -> list[Receipt]:
        """Post signed entries (one, or a batch appended all or nothing) and return verified receipts."""
        if not self.trusted:
            raise LedgerError("no trusted log key: pass log_keys or call trust_server_keys first")
        wire = [entry.to_wire() for entry in entries]
        body = wire[0] if len(wire) == 1 else {"entries": wire}
        result = self._request("POST", f"/api/v1/villages/{quote(village)}/entries", body)
        checkpoint = open_checkpoint(result["checkpoint"], self.trusted)
        if checkpoint.size != result["tree_size"]:
            raise LedgerError(f"server says tree size {result['tree_size']}, its checkpoint says {checkpoint.size}")
        receipts = []
        for entry, appended in zip(entries, result["appended"], strict=True):
            hashes = tuple(b64decode(h, length=32, what="inclusion proof hash") for h in appended["inclusion_proof"])
            merkle.verify_inclusion(appended["index"], checkpoint.size, merkle.hash_leaf(entry.leaf), hashes, checkpoint.root_hash)
            proof = TlogProof(index=appended["index"], hashes=hashes, checkpoint=result["checkpoint"])
            receipts.append(Receipt(entry.id, appended["index"], checkpoint, proof))
        return receipts
