"""Member login by signing a challenge (see ``api.auth``)."""

from __future__ import annotations

from typing import Any

from ..auth import CHALLENGE_SECONDS, TOKEN_SECONDS, challenge_message, issue_token, new_challenge
from ..extensions import Blueprint, store
from ..schemas.auth import Challenge, Token, TokenRequest

blp = Blueprint("auth", __name__, url_prefix="/api/v1/villages", description="Member login with ledger keys")


@blp.route("/<village>/auth/challenge", methods=["POST"])
@blp.response(200, Challenge)
def challenge(village: str) -> dict[str, Any]:
    """A fresh challenge; sign ``message`` with your member key and exchange it for a token."""
    store().village_id(village)
    value = new_challenge(village)
    return {"challenge": value, "message": challenge_message(village, value), "expires_in": CHALLENGE_SECONDS}


@blp.route("/<village>/auth/token", methods=["POST"])
@blp.arguments(TokenRequest)
@blp.response(200, Token)
def token(request: dict[str, str], village: str) -> dict[str, Any]:
    """A short-lived bearer token for the member whose key signed the challenge."""
    value, member, roles = issue_token(village, request["key"], request["challenge"], request["signature"])
    return {"token": value, "member": member, "roles": sorted(roles), "expires_in": TOKEN_SECONDS}
