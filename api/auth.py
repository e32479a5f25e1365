"""Member login without passwords: sign a server challenge with your ledger key, get a short-lived token.

1. ``POST .../auth/challenge`` returns a challenge (a nonce the server signed with its secret, so it needs
   no storage) and the exact message to sign: ``villageledger/auth/v1\\n<village>\\n<challenge>``.
2. ``POST .../auth/token`` with the member's public key, the challenge and an Ed25519 signature of the
   message. The key must be registered and unrevoked in the village's ledger *now*.
3. The token is a signed, timed claim (member, key, village). Every request re-reads the key and the
   member's roles from the ledger, so a revocation or role change takes effect at once.

Tokens authenticate reads of private data only; no token can append: appends are authorised by the
entry's own signatures.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

import keys
from ledger.canonical import b64decode
from ledger.errors import LedgerError
from storage import challenges
from storage.reads import active_member

from .extensions import now, store
from .problems import Problem

AUTH_DOMAIN = "villageledger/auth/v1"
CHALLENGE_SECONDS = 300
TOKEN_SECONDS = 900


@dataclass(frozen=True)
class Caller:
    member: str
    roles: frozenset[str]
    grid: str | None
    household: str | None

    def may_read_personal_data(self, grid: str | None) -> bool:
        """The one personal-data policy (PIPL; docs/data-model.md §11): a household's names, ID numbers,
        phones and address are read by the committee, and by the grid worker of the household's grid
        (``grid`` None: of any grid, so no grid worker), by nobody else: not supervisors, the township,
        the desk or auditors, who see households by their public number and label only."""
        return "committee" in self.roles or ("grid_worker" in self.roles and grid is not None and self.grid == grid)


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"villageledger-{purpose}")


def challenge_message(village: str, challenge: str) -> str:
    return f"{AUTH_DOMAIN}\n{village}\n{challenge}"


def _open(purpose: str, value: str, max_age: int, *, expired: str, forged: str, field: str) -> dict[str, Any]:
    """The claim inside a value this server signed for ``purpose`` less than ``max_age`` seconds ago."""
    try:
        claim: dict[str, Any] = _serializer(purpose).loads(value, max_age=max_age)
    except SignatureExpired as exc:
        raise _unauthorised(expired, field) from exc
    except BadSignature as exc:
        raise _unauthorised(forged, field) from exc
    return claim


def new_challenge(village: str) -> str:
    return _serializer("challenge").dumps({"v": village, "n": secrets.token_urlsafe(16)})


def issue_token(village: str, key_b64: str, challenge: str, signature_b64: str) -> tuple[str, str, frozenset[str]]:
    """Check the signed challenge; return (token, member id, roles). Raises Problem 401 on any failure."""
    claim = _open("challenge", challenge, CHALLENGE_SECONDS, field="challenge",
                  expired="the challenge has expired; ask for a new one",
                  forged="the challenge was not issued by this server")
    if claim.get("v") != village:
        raise _unauthorised(f"the challenge was issued for village {claim.get('v')!r}", "challenge")
    try:
        public = b64decode(key_b64, length=32, what="key")
        keys.verify_signature(public, b64decode(signature_b64, length=64, what="signature"),
                              challenge_message(village, challenge).encode())
    except LedgerError as exc:
        raise _unauthorised(f"the signature does not verify: {exc}", "signature") from exc
    caller = _caller_for_key(village, public)
    if not challenges.use_once(store(), claim["n"], now=now(), lifetime=timedelta(seconds=CHALLENGE_SECONDS)):
        raise _unauthorised("the challenge was already used; ask for a new one", "challenge")
    token = _serializer("token").dumps({"v": village, "m": caller.member, "k": key_b64})
    return token, caller.member, caller.roles


def _caller_for_key(village: str, public: bytes) -> Caller:
    found = active_member(store(), village, public)
    if found is None:
        raise _unauthorised("this key is not an active member key of the village", "key")
    member_id, roles, grid, household = found
    return Caller(member_id, roles, grid, household)


def current_caller(village: str) -> Caller | None:
    """The member behind the request's bearer token, or None without one. A bad token is a 401."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorised("use 'Authorization: Bearer <token>'", "Authorization")
    claim = _open("token", token, TOKEN_SECONDS, field="Authorization",
                  expired="the token has expired; sign a new challenge", forged="the token is not valid")
    if claim.get("v") != village:
        raise Problem(403, "forbidden", "Forbidden", f"the token is for village {claim.get('v')!r}")
    caller = _caller_for_key(village, b64decode(claim["k"], length=32, what="key"))
    if caller.member != claim.get("m"):
        raise _unauthorised("the token's key now belongs to another member", "Authorization")
    return caller


def require_caller(village: str) -> Caller:
    caller = current_caller(village)
    if caller is None:
        raise _unauthorised("this needs a member token: sign a challenge from .../auth/challenge", "Authorization")
    return caller


def _unauthorised(detail: str, field: str) -> Problem:
    return Problem(401, "unauthorised", "Authentication required", detail,
                   errors=[{"field": field, "problem": detail}], headers={"WWW-Authenticate": 'Bearer realm="villageledger"'})
