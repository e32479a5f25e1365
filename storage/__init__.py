"""Storage: adapts the ledger library to a SQL database (SQLite by default, PostgreSQL supported)."""

from .db import database_url, make_engine
from .store import Appended, NotFound, StorageError, Store

__all__ = ["Appended", "NotFound", "StorageError", "Store", "database_url", "make_engine"]
