"""Login challenges are used once: the nonce of every exchanged challenge is kept (in the database, so that
every worker sees it) until the challenge would have expired anyway."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from ledger.entries import format_time

from . import models as m
from .db import write_session
from .store import Store


def use_once(store: Store, nonce: str, *, now: datetime, lifetime: timedelta) -> bool:
    """Record ``nonce`` as used; False if it already was. Forgets nonces whose challenges have expired."""
    try:
        with write_session(store.engine) as session:
            session.execute(delete(m.UsedChallenge).where(m.UsedChallenge.expires < format_time(now)))  # type: ignore[arg-type]
            session.add(m.UsedChallenge(nonce=nonce, expires=format_time(now + lifetime)))
    except IntegrityError:
        return False
    return True
