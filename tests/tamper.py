"""What a malicious operator with the database password can do: change, delete or reorder rows of the
log directly, bypassing the append-only triggers. Shared by the storage, API and page tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from ledger import merkle
from ledger.entries import Entry
from ledger.state import State
from storage import Store
from storage.appending import entry_row, node_rows
from storage.db import write_session
from storage.models import LOG_TABLES, EntryRow, TreeNode


@contextmanager
def behind_the_triggers(engine: Engine, backend: str) -> Iterator[Connection]:
    """A transaction in which the append-only triggers do not fire: what a malicious operator with the
    database password can do. SQLite: drop the triggers; PostgreSQL: replica mode disables them."""
    with engine.begin() as connection:
        if backend == "postgresql":
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            for table in LOG_TABLES:
                for action in ("update", "delete"):
                    connection.exec_driver_sql(f"DROP TRIGGER {table}_no_{action}")
        yield connection


def sql(connection: Connection, statement: str, **values: Any) -> Any:
    """Run ``statement`` with ``:name`` parameters on either backend."""
    return connection.execute(text(statement), values)


def flip_one_byte(connection: Connection, village_id: int, index: int) -> None:
    leaf = bytes(sql(connection, "SELECT leaf FROM entries WHERE village_id = :v AND idx = :i", v=village_id, i=index).scalar_one())
    position = leaf.index(b'"amount":') + len(b'"amount":')
    tampered = leaf[:position] + bytes([leaf[position] ^ 1]) + leaf[position + 1 :]  # "amount":4 becomes 5
    sql(connection, "UPDATE entries SET leaf = :leaf WHERE village_id = :v AND idx = :i", leaf=tampered, v=village_id, i=index)


def delete_entry(connection: Connection, village_id: int, index: int) -> None:
    sql(connection, "DELETE FROM entries WHERE village_id = :v AND idx = :i", v=village_id, i=index)


def swap_entries(connection: Connection, village_id: int, index: int) -> None:
    for old, new in ((index, -1), (index + 1, index), (-1, index + 1)):
        sql(connection, "UPDATE entries SET idx = :new WHERE village_id = :v AND idx = :old", new=new, v=village_id, old=old)


def append_without_the_rules(store: Store, slug: str, entry: Entry) -> None:
    """What an operator with the database and the log key can do: append an entry the ledger refuses (the
    server's append path would), with a checkpoint signed by the village's own key, as if it were valid."""
    with write_session(store.engine) as session:
        village = store.village_row(session, slug, lock=True)
        assert village.id is not None
        size, _ = store.latest(session, village)
        tree = store._proofs.compact_range(session, village.id, size)
        leaf_hash = merkle.hash_leaf(entry.leaf)
        connection = session.connection()
        connection.execute(EntryRow.__table__.insert(), [entry_row(village.id, size, entry, leaf_hash, State())])
        connection.execute(TreeNode.__table__.insert(), node_rows(village.id, tree, leaf_hash))
        store._proofs.sign_checkpoint(session, village.id, village.origin, tree)
        session.commit()
