"""A server worker's SQLite engine, driven line by line from stdin by test_reliability: ``read`` answers
``read N`` (the rows of table ``t``), ``write`` inserts one and answers ``wrote``. An error ends the process
with its traceback on stderr."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from storage.db import make_engine

engine = make_engine(f"sqlite:///{sys.argv[1]}")
for command in sys.stdin:
    if command.strip() == "read":
        with engine.connect() as connection:
            print("read", connection.execute(text("SELECT count(*) FROM t")).scalar_one(), flush=True)
    else:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
        print("wrote", flush=True)
