"""The villager's phone (issue 22): how long a household page takes to say "all verified" in Debian's
Chromium with its CPU slowed six times and 400 ms added to every request (a cheap phone on a slow line), with the
township's witness pinned by the door plate, and how many bytes the first page weighs.

The servers are this process's threads (the village's app and the township node's, each on its own SQLite
file): the figure is the phone's work — parsing, verifying the cosigned checkpoint and every record with
WebCrypto — and the latency, not the servers'. Each visit is a first visit (a fresh browser context).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.chromium import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.servers import served

from .report import Figure, Report

SLOWDOWN, LATENCY_MS, VISITS = 6, 400, 3
TARGET_SECONDS, TARGET_BYTES = 3.0, 100 * 1024


def phone_figures(report: Report, work: Path) -> None:
    from playwright.sync_api import sync_playwright

    section = "Phone"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request in the bench's output
    with _witnessed_door(work) as door, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            times, weights = zip(*(_first_visit(browser, door) for _ in range(VISITS)), strict=True)
        finally:
            browser.close()
    slowest = max(times)
    report.add(Figure(section, f"household page to 'all verified', CPU {SLOWDOWN}x slower, {LATENCY_MS} ms a request",
                      measured=f"{', '.join(f'{t:.2f}' for t in times)} s ({VISITS} first visits)",
                      target=f"< {TARGET_SECONDS:.0f} s", met=slowest < TARGET_SECONDS))
    report.add(Figure(section, "first household page, every byte it loads", measured=f"{max(weights):,} bytes",
                      target=f"< {TARGET_BYTES // 1024} KB", met=max(weights) < TARGET_BYTES))


def _first_visit(browser: Any, door: str) -> tuple[float, int]:
    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        weight = [0]
        page.on("response", lambda response: weight.__setitem__(0, weight[0] + len(response.body())))
        cdp = context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": SLOWDOWN})
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": LATENCY_MS,
                                                      "downloadThroughput": -1, "uploadThroughput": -1})
        started = time.perf_counter()
        page.goto(door)
        page.wait_for_selector(".status.ok, .status.bad", timeout=60_000)
        elapsed = time.perf_counter() - started
        if page.locator(".status.ok").count() != 1:
            raise RuntimeError(f"the phone did not verify the page: {page.inner_text('#verify-status')}")
        return elapsed, weight[0]
    finally:
        context.close()


@contextmanager
def _witnessed_door(work: Path) -> Iterator[str]:
    """A village of a few hundred entries, its checkpoint cosigned by a township node, and the address on the
    door plate of a household with twenty records, pinning the witness."""
    import keys
    from api.app import create_app
    from api.township import create_app as create_township_app
    from storage import Store, make_engine, plates
    from storage.cosigning import WitnessEndpoint, request_cosignature
    from storage.migrate import upgrade
    from storage.witness import add_log, make_witness_key
    from tests.kit import LOG_KEY_PASSPHRASE, Kit, StoredVillage

    for leftover in work.glob("phone-*.sqlite3*"):
        leftover.unlink()
    os.environ["VILLAGELEDGER_INSTANCE_PATH"] = str(work / "phone-instance")
    village_url, township_url = (f"sqlite:///{work / f'phone-{name}.sqlite3'}" for name in ("village", "township"))
    engines = [make_engine(url) for url in (village_url, township_url)]
    for engine in engines:
        upgrade(engine)
    kit = Kit()
    village = StoredVillage.create(Store(engines[0], log_key_passphrase=LOG_KEY_PASSPHRASE, clock=kit.clock), kit)
    village.append(*[kit.award("h2", 1 + i % 5) for i in range(20)])
    village.grow(300)
    witness_name = "witness.bench.example"
    if not (work / "phone-instance" / "witness.key").exists():
        make_witness_key(b"bench")
    township = create_township_app({"DATABASE_URL": township_url, "WITNESS_NAME": witness_name,
                                    "WITNESS_KEY_PASSPHRASE": "bench"})
    add_log(engines[1], kit.origin, village.store.verifier_keys(kit.slug))
    with served(township) as township_at:
        vkey = township.extensions["villageledger.witness"].vkey
        endpoint = WitnessEndpoint(f"{township_at}/witness", keys.parse_verifier_key(vkey))
        request_cosignature(village.store, kit.slug, endpoint)
        app = create_app({"DATABASE_URL": village_url, "SECRET_KEY": "bench", "LOG_KEY_PASSPHRASE": LOG_KEY_PASSPHRASE.decode(),
                          "CLOCK": kit.clock, "WITNESSES": f"{endpoint.url} {vkey}"})
        with served(app) as village_at:
            token = plates.token_for(village.store, kit.slug, "h2")
            yield plates.plate_url(village_at, token, [plates.witness_pin(vkey)])
        app.extensions["villageledger.store"].engine.dispose()
    township.extensions["villageledger.witness"].engine.dispose()
    for engine in engines:
        engine.dispose()
