"""``villageledger``: the command line for operators and auditors.

The auditor's commands (``verify``, ``keygen``) import nothing of the database layer or Flask, so the base
install (``pip install villageledger``, no server extras) is enough to audit. Server commands import
storage inside their bodies.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import keys
from ledger.canonical import b64encode
from ledger.errors import LedgerError, VerificationError

if TYPE_CHECKING:
    from storage import Store


@contextmanager
def _store() -> Iterator[Store]:
    """The store of VILLAGELEDGER_DATABASE_URL; its engine is disposed when the command ends."""
    from storage import Store, make_engine
    from storage.db import log_key_passphrase

    engine = make_engine()
    try:
        yield Store(engine, log_key_passphrase=log_key_passphrase())
    finally:
        engine.dispose()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group()
def main() -> None:
    """villageledger: a signed, append-only, verifiable ledger of village points and public affairs."""


# --- auditing (base install only) -----------------------------------------------------------------


@main.command()
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--log-key", "log_keys", multiple=True,
              help="The village's note verifier key (name+hash+key), obtained out of band. Repeat for rotated keys.")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A C2SP tlog-policy: the logs and witnesses to trust, and the quorum of cosignatures required.")
@click.option("--checkpoint", "known", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A signed checkpoint you kept earlier; the bundle must be consistent with it.")
@click.option("--workers", type=int, default=None, help="Processes checking signatures (default: every core).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def verify(bundle: Path, log_keys: tuple[str, ...], policy: Path | None, known: tuple[Path, ...], workers: int | None,
           quiet: bool) -> None:
    """Verify an export BUNDLE trusting nothing but the given log keys (and a policy's logs and witnesses).

    Checks every signature and authorisation, recomputes the Merkle root at every signed checkpoint,
    and recomputes every balance; with --policy, also that the quorum of witnesses cosigned the last
    checkpoint and that no entry is dated after a cosignature covering it. Exits non-zero naming the first
    bad entry.
    """
    from tqdm import tqdm

    from ledger.note import open_checkpoint
    from ledger.policy import parse_policy
    from ledger.verify import verify_bundle

    try:
        trusting = parse_policy(policy.read_bytes()) if policy else None
        trusted = [keys.parse_verifier_key(k) for k in log_keys] + list(trusting.logs if trusting else ())
        if not trusted:
            raise LedgerError("give the log's key (--log-key) or a policy that lists the log (--policy)")
        kept = [open_checkpoint(path.read_text(encoding="utf-8"), trusted) for path in known]
    except LedgerError as exc:
        _fail(str(exc))
        return
    with bundle.open("rb") as lines, tqdm(unit=" entries", disable=quiet, file=sys.stderr) as bar:
        try:
            report = verify_bundle(lines, trusted, known=kept, policy=trusting, workers=workers, progress=bar.update)
        except VerificationError as exc:
            bar.close()
            _fail(str(exc))
            return
    click.echo(f"ok: {report.summary()}")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--passphrase", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Encrypts the private key file (PKCS#8).")
def keygen(path: Path, passphrase: str) -> None:
    """Generate a member's Ed25519 key; write it encrypted (mode 0600) to PATH and print the public key."""
    key = keys.SigningKey.generate()
    try:
        keys.save_private_key(key, path, passphrase.encode())
    except (LedgerError, OSError, ValueError) as exc:
        _fail(str(exc))
    click.echo(b64encode(key.public_bytes))


@main.command()
@click.argument("village")
@click.argument("kind")
@click.argument("body")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Your encrypted member key file.")
@click.option("--cosigner-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A second committee member's key file, for points touching the author's own household.")
@click.option("--server", default="http://127.0.0.1:5000", show_default=True, help="Base URL of the API.")
@click.option("--log-key", "log_keys", multiple=True, help="Trusted log verifier key(s); default: trust the server's.")
@click.option("--receipt", type=click.Path(dir_okay=False, path_type=Path), help="Write the offline receipt here.")
def post(village: str, kind: str, body: str, key_file: Path, cosigner_key: Path | None, server: str,
         log_keys: tuple[str, ...], receipt: Path | None) -> None:
    """Sign an entry of KIND with BODY (JSON, or @file) locally and post it to VILLAGE.

    Passphrases come from VILLAGELEDGER_KEY_PASSPHRASE (and VILLAGELEDGER_COSIGNER_PASSPHRASE) or a prompt.
    The answer is checked (signed checkpoint, inclusion proof) before the receipt is printed.
    """
    import os

    from ledger.canonical import parse_json
    from ledger.entries import make_unsigned, sign_entry

    from .client import LedgerClient

    def load(path: Path, variable: str, who: str) -> keys.SigningKey:
        passphrase = os.environ.get(variable) or click.prompt(f"passphrase for {who} key {path}", hide_input=True)
        return keys.load_private_key(path, passphrase.encode())

    try:
        text = Path(body[1:]).read_text(encoding="utf-8") if body.startswith("@") else body
        author = load(key_file, "VILLAGELEDGER_KEY_PASSPHRASE", "your")
        cosigner = load(cosigner_key, "VILLAGELEDGER_COSIGNER_PASSPHRASE", "the cosigner's") if cosigner_key else None
        unsigned = make_unsigned(kind=kind, village=village, body=parse_json(text), author=author.public_bytes,
                                 cosigner=cosigner.public_bytes if cosigner else None)
        entry = sign_entry(unsigned, author, cosigner)
        client = LedgerClient(server, log_keys=log_keys)
        if not log_keys:
            trusted = client.trust_server_keys(village)
            click.echo(f"note: trusting the server's log key {trusted[-1]} (pass --log-key to pin it)", err=True)
        (result,) = client.post(village, [entry])
    except (LedgerError, OSError) as exc:
        _fail(str(exc))
        return
    click.echo(f"appended {entry.kind} {entry.id} at index {result.index}; checkpoint size {result.checkpoint.size} verified")
    if receipt is not None:
        receipt.write_text(result.proof.text(), encoding="utf-8")
        click.echo(f"receipt written to {receipt}")


# --- operating a server ---------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema commands (run by the deploy step, never by the app)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to VILLAGELEDGER_DATABASE_URL."""
    from storage.migrate import upgrade

    with _store() as store:
        upgrade(store.engine)
    click.echo("database is at the latest schema")


@main.command()
@click.option("--households", default=200, show_default=True)
@click.option("--events", default=3000, show_default=True, help="Points entries to generate.")
def demo(households: int, events: int) -> None:
    """Create the demo village (slug demo), if it does not exist yet. Migrates the database first."""
    from storage.db import instance_path
    from storage.demo import DEMO_PASSPHRASE, build_demo
    from storage.migrate import upgrade

    folder = instance_path() / "demo-keys"
    with _store() as store:
        upgrade(store.engine)
        created = build_demo(store, folder, households=households, events=events)
        size, log_key = store.size("demo"), store.verifier_keys("demo")[-1]
    state = "created" if created else "already exists"
    click.echo(f"demo village {state}: {size} entries; member keys in {folder} (passphrase: {DEMO_PASSPHRASE.decode()})")
    click.echo(f"log key: {log_key}")


@main.command("log-key")
@click.argument("village")
def log_key(village: str) -> None:
    """Print the village's note verifier keys (one a line, current last)."""
    with _store() as store:
        for key in _guard(lambda: store.verifier_keys(village)):
            click.echo(key)


@main.command()
@click.argument("village")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export(village: str, output: Path) -> None:
    """Write the village's self-contained audit bundle to OUTPUT (streamed)."""
    with _store() as store:
        lines = store.export(village)
        first = _guard(lambda: next(lines))  # an unknown village fails here, before the file is created
        count = 1
        with output.open("wb") as handle:
            handle.write(first)
            for line in lines:
                handle.write(line)
                count += 1
    click.echo(f"wrote {output} ({count} lines)")


@main.command()
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--log-key", "log_keys", multiple=True, required=True,
              help="The village's note verifier key(s), obtained out of band; the bundle must verify with them.")
@click.option("--signing-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The village's log private key from a backup (passphrase in VILLAGELEDGER_SIGNING_KEY_PASSPHRASE); "
                   "without it a new log key signs future checkpoints (a rotation).")
def restore(bundle: Path, log_keys: tuple[str, ...], signing_key: Path | None) -> None:
    """Verify BUNDLE, then load it as a new village into VILLAGELEDGER_DATABASE_URL (any backend)."""
    import os

    try:
        trusted = [keys.parse_verifier_key(k) for k in log_keys]
        key = None
        if signing_key is not None:
            passphrase = os.environ.get("VILLAGELEDGER_SIGNING_KEY_PASSPHRASE") or click.prompt(
                f"passphrase for {signing_key}", hide_input=True)
            key = keys.load_private_key(signing_key, passphrase.encode())
        with _store() as store:
            report = store.restore(bundle, trusted, log_key=key)
    except LedgerError as exc:
        _fail(str(exc))
        return
    click.echo(f"restored: {report.summary()}")


@main.command()
@click.argument("village")
def check(village: str) -> None:
    """Self-check: re-derive the tree and balances from the stored entries and compare."""
    with _store() as store:
        report = _guard(lambda: store.check(village))
    click.echo(f"ok: {report.summary()}")


@main.command()
@click.argument("village")
def rebuild(village: str) -> None:
    """Recompute the derived tables (households, balances, members...) from the entries."""
    with _store() as store:
        _guard(lambda: store.rebuild(village))
    click.echo(f"derived tables of {village} rebuilt")


@main.command()
@click.argument("village")
@click.argument("household")
def erase(village: str, household: str) -> None:
    """Erase a household's personal data (PIPL). Signatures, proofs and balances stay verifiable."""
    with _store() as store:
        erased = _guard(lambda: store.erase_private(village, household))
    click.echo("erased" if erased else "nothing to erase")


def _plate_pins() -> list[str]:
    """The township witnesses the plates pin: those ``VILLAGELEDGER_WITNESSES`` names (none if unset)."""
    from storage import plates as door_plates
    from storage.cosigning import configured_witnesses

    return door_plates.witness_pins(_guard(configured_witnesses))


_BASE_URL = click.option(
    "--base-url", default=None,
    help="Where the households' pages are served; the QR codes hold BASE_URL/h/<token>. "
         "Default: VILLAGELEDGER_PUBLIC_URL, else http://127.0.0.1:5000.")


@main.command()
@click.argument("village")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The PDF to write.")
@click.option("--household", "households", multiple=True,
              help="Only this household's plate; repeat for several. Default: every household.")
@_BASE_URL
def plates(village: str, output: Path, households: tuple[str, ...], base_url: str | None) -> None:
    """Write VILLAGE's door plates to OUTPUT: A4, six a page, each with its household's QR code.

    A household without a plate gets a new secret token; printing again gives the same codes until a
    plate is reissued (reissue-plate).
    """
    from storage import plates as door_plates

    base_url = base_url or door_plates.public_url()
    _guard(lambda: door_plates.plate_url(base_url, "check"))  # a bad URL fails before any token is issued
    with _store() as store:
        sheet = _guard(lambda: door_plates.plate_sheet(store, village, list(households) or None))
    pages = _guard(lambda: door_plates.write_pdf(sheet, output, base_url=base_url, pins=_plate_pins()))
    click.echo(f"wrote {output} ({len(sheet.plates)} plates on {pages} page{'s' if pages > 1 else ''})")


@main.command("reissue-plate")
@click.argument("village")
@click.argument("household")
@_BASE_URL
def reissue_plate(village: str, household: str, base_url: str | None) -> None:
    """Replace HOUSEHOLD's lost or damaged door plate: its old code stops working at once (its page
    says the plate was replaced) and a new one works. Prints the new URL; print the plate itself with
    ``plates VILLAGE --household HOUSEHOLD -o FILE``."""
    from storage import plates as door_plates

    base_url = base_url or door_plates.public_url()
    _guard(lambda: door_plates.plate_url(base_url, "check"))
    with _store() as store:
        token = _guard(lambda: door_plates.reissue(store, village, household))
    click.echo(door_plates.plate_url(base_url, token, _plate_pins()))


@main.command("desk-key")
@click.argument("village")
@click.option("--replace", is_flag=True, help="Make a new desk key (the old one lost or compromised) and print it.")
def desk_key(village: str, replace: bool) -> None:
    """Print VILLAGE's complaint desk key (made on first use), which signs villagers' receipts, answers and
    ratings. The township registers it once, e.g. ``villageledger post VILLAGE member.add
    '{"member": "complaint-desk", "name": "投诉受理", "roles": ["intake"], "key": "<KEY>"}' --key township.key``.

    With --replace: a new key, which the township registers with ``key.add`` for the desk member and then
    revokes the old one (``key.revoke``); the desk keeps filing with the old key until the new one is
    registered, so villagers can file throughout."""
    from storage import complaints

    with _store() as store:
        public = _guard(lambda: (complaints.replace_desk_key if replace else complaints.desk_public_key)(store, village))
    click.echo(b64encode(public))


@main.command()
@click.argument("village")
def escalate(village: str) -> None:
    """Escalate to the township every complaint of VILLAGE past its deadline (the server also does this
    whenever complaints are read; run this from cron, e.g. hourly, so that quiet villages escalate too)."""
    from datetime import UTC, datetime

    from storage import complaints

    with _store() as store:
        escalated = _guard(lambda: complaints.escalate_overdue(store, village, datetime.now(UTC)))
    click.echo(f"{len(escalated)} complaint(s) escalated" + "".join(f"\n  {receipt}" for receipt in escalated))


# --- the township's witness, and asking it to cosign ----------------------------------------------------


@main.command()
@click.option("--every", type=float, default=None, help="Keep going, every this many seconds (default: once).")
def cosign(every: float | None) -> None:
    """Ask every witness in VILLAGELEDGER_WITNESSES (pairs of URL and cosigner key) to cosign every village's
    latest checkpoint, and keep the cosignatures. Run it as a service with --every 5; once, it exits 1 if a
    witness refused or could not be reached."""
    import time

    from storage.cosigning import CosigningError, configured_witnesses, request_cosignature

    witnesses = _guard(configured_witnesses)
    if not witnesses:
        _fail("VILLAGELEDGER_WITNESSES names no witness")
    with _store() as store:
        while True:
            refused = 0
            for village in store.villages():
                for witness in witnesses:
                    try:
                        size = request_cosignature(store, village.slug, witness)
                        click.echo(f"{village.slug}: {witness.key.name} cosigned size {size}")
                    except CosigningError as exc:
                        refused += 1
                        click.echo(f"{village.slug}: {exc}", err=True)
            if every is None:
                sys.exit(1 if refused else 0)
            time.sleep(every)


@main.group()
def township() -> None:
    """The township node: its witness of the villages' logs (serve it: gunicorn 'api.township:create_app()')."""


@township.command("init")
@click.option("--name", required=True, help="The witness's key name, e.g. witness.qingfeng-town.gov.cn")
def township_init(name: str) -> None:
    """Migrate the township's database and make the witness's key (encrypted in the instance folder, under
    VILLAGELEDGER_WITNESS_KEY_PASSPHRASE); print its cosigner verifier key, which villages and phones trust."""
    from storage.migrate import upgrade
    from storage.witness import make_witness_key, witness_key_passphrase

    with _store() as store:
        upgrade(store.engine)
    key = _guard(lambda: make_witness_key(witness_key_passphrase().encode()))
    click.echo(keys.verifier_key(name, key.public_bytes, keys.ALG_COSIGNATURE_V1))


@township.command("add-log")
@click.argument("origin")
@click.argument("log_keys", nargs=-1, required=True)
@click.option("--village", help="The village's slug: with --tiles, the witness mirrors the log and replays it.")
@click.option("--tiles", "tiles_url", help="Where the village serves its tiles, e.g. https://…/api/v1/villages/demo/log/")
def township_add_log(origin: str, log_keys: tuple[str, ...], village: str | None, tiles_url: str | None) -> None:
    """Witness the village log ORIGIN, signed by any of LOG_KEYS (its verifier keys: villageledger log-key); with
    --village and --tiles, keep a mirror of it and cosign only checkpoints whose entries keep the ledger's rules."""
    from storage.witness import add_log

    if bool(village) != bool(tiles_url):
        _fail("--village and --tiles go together")
    with _store() as store:
        _guard(lambda: add_log(store.engine, origin, log_keys, village=village, tiles_url=tiles_url))
    click.echo(f"witnessing {origin}" + (f", mirroring {village} from {tiles_url}" if village else ""))


def _guard(action: Any) -> Any:
    try:
        return action()
    except (LedgerError, ValueError) as exc:
        _fail(str(exc))
