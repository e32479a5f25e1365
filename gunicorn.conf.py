"""gunicorn's settings for villageledger, read from the working directory by ``gunicorn 'api.app:create_app()'``
(and by the benchmarks, so they measure what is deployed).

One worker process per core: the GIL makes a process the unit of parallelism. Threads in each: appends
that arrive together in a process are committed together (``Store.append``'s group commit, one fsync and
one checkpoint for the group), and a thread waiting on the database or on the group's commit leaves the
core to the others.
"""

import gc
import os
from typing import Any

bind = os.environ.get("VILLAGELEDGER_BIND", "127.0.0.1:8000")
workers = os.cpu_count() or 1
worker_class = "gthread"
threads = 16
keepalive = 30
backlog = 512


def post_worker_init(worker: Any) -> None:
    """Before the worker serves: (1) it reads its villages' Merkle tree nodes into its node cache
    (``Store.warm_node_cache``, a few seconds at 10^6 entries), so that no villager's proof pays for that
    (if the database cannot be read, the worker serves anyway and the cache fills later);
    (2) it takes every object alive then (modules, the app, SQLAlchemy's metadata, templates: hundreds of
    thousands) out of the cyclic collector's walks (``gc.freeze``). Under load, objects of requests in
    flight survive into the oldest generation, which triggers full collections; each walked all of them and
    stopped the whole worker, 60-95 ms every few seconds at 10^6 entries, and the requests it held up made
    the household page's p99. Frozen objects are never freed, and none of them is garbage: they live as
    long as the worker."""
    try:
        worker.wsgi.extensions["villageledger.store"].warm_node_cache()
    except Exception:  # best effort: the cache also fills as proofs need it, and a database
        # that is down at boot must not stop the worker (gunicorn halts when one fails to boot)
        worker.log.exception("villageledger: the node cache was not warmed; it fills as proofs need it")
    gc.collect()
    gc.freeze()
