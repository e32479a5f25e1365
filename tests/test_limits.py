"""The per-client limits hold for the whole service, not per worker or per route: two gunicorn servers of
the same village (two app servers, or two workers: separate processes either way) keep their counts in one
real Redis (``VILLAGELEDGER_RATELIMIT_STORAGE_URI``), and filing through the API and through the villager's
form draws on one allowance ("5 filings a minute"). With each process counting alone (``memory://``) the
same client got five a minute from each process and each route."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable

import pytest
from kit import StoredVillage
from servers import Server

pytestmark = pytest.mark.slow

FILINGS = 12


def file_through_the_api(server: Server, slug: str, n: int) -> int:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in (("category", "suggestion"), ("text", f"建议 {n}"))]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(f"{server.url}/api/v1/villages/{slug}/complaints", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return _status(request)


def file_through_the_form(server: Server, slug: str, n: int) -> int:
    body = urllib.parse.urlencode({"category": "suggestion", "text": f"建议 {n}"}).encode()
    request = urllib.request.Request(f"{server.url}/v/{slug}/complain", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    return _status(request)


def _status(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # a new connection each time
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def test_five_filings_a_minute_across_every_process_and_both_routes(
    serve: Callable[..., Server], server_environment: dict[str, str], redis_url: str, village: StoredVillage, desk: str
) -> None:
    server_environment["VILLAGELEDGER_RATELIMIT_STORAGE_URI"] = redis_url
    server_environment["VILLAGELEDGER_RATELIMIT_KEY_PREFIX"] = uuid.uuid4().hex  # this test's counts alone
    servers = [serve(workers=1).start(), serve(workers=1).start()]
    size = village.size()
    statuses = [(file_through_the_form if n % 2 else file_through_the_api)(servers[n // 2 % 2], village.slug, n)
                for n in range(FILINGS)]
    assert statuses[:5] == [201, 200, 201, 200, 201] and set(statuses[5:]) == {429}, statuses
    assert village.store.size(village.slug) == size + 5
