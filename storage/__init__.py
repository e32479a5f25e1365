"""Storage: adapts the ledger library to a SQL database (SQLite by default, PostgreSQL supported)."""

from .appending import Appended
from .db import database_url, make_engine
from .errors import NotFound, StorageError
from .store import Store

__all__ = ["Appended", "NotFound", "StorageError", "Store", "database_url", "make_engine"]
