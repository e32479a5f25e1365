"""gunicorn's settings for villageledger, read from the working directory by ``gunicorn 'api:create_app()'``
(and by the benchmarks, so they measure what is deployed).

One worker process per core: the GIL makes a process the unit of parallelism. Threads in each: appends
that arrive together in a process are committed together (``Store.append``'s group commit, one fsync and
one checkpoint for the group), and a thread waiting on the database or on the group's commit leaves the
core to the others.
"""

import os

bind = os.environ.get("VILLAGELEDGER_BIND", "127.0.0.1:8000")
workers = os.cpu_count() or 1
worker_class = "gthread"
threads = 16
keepalive = 30
backlog = 512
