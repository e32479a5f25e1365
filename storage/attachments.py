"""Attachments, stored by SHA-256: evidence photos and an affair's receipts. Kept off the log, which holds
their hashes (and so binds the bytes); a photo is kept only as its re-encoded pixels."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ledger.entries import utc_now

from . import models as m
from .console import ConsoleError
from .db import read_session, write_session
from .errors import NotFound
from .images import ImageRejected, clean_image
from .store import Store

MEDIA_TYPES: Final = ("image/jpeg", "image/png", "application/pdf")  # what attachments are stored as
PDF_MAGIC: Final = b"%PDF-"
MAX_PDF_BYTES: Final = 20 * 1024 * 1024


@dataclass(frozen=True)
class StoredAttachment:
    sha256: str
    media_type: str
    size: int
    name: str  # a file name entries may carry (``ledger.entries.SAFE_FILENAME``), from the client's


def store_attachment(store: Store, slug: str, raw: bytes, *, filename: str = "") -> StoredAttachment:
    """Keep an uploaded file and name it by its SHA-256; storing the same file again changes nothing.

    (1) a PDF (it starts with ``%PDF-``) of at most MAX_PDF_BYTES is kept as uploaded;
    (2) anything else must be a JPEG, PNG or WebP photo: only its re-encoded pixels are kept
        (``clean_image``), and the hash is that of the cleaned bytes;
    (3) insert it unless the village already has it. Raises ConsoleError naming ``file``."""
    # (1)
    if raw.startswith(PDF_MAGIC):
        if len(raw) > MAX_PDF_BYTES:
            raise ConsoleError(f"the PDF is {len(raw):,} bytes; at most {MAX_PDF_BYTES:,} are allowed", field="file")
        data, media_type, extension = raw, "application/pdf", ".pdf"
    # (2)
    else:
        try:
            photo = clean_image(raw, name=filename, field="file")
        except ImageRejected as exc:
            message = str(exc) + (" nor a PDF" if exc.code == "not_an_image" else "")
            raise ConsoleError(message, field="file") from exc
        data, media_type = photo.data, photo.media_type
        extension = ".png" if media_type == "image/png" else ".jpg"
    sha256 = hashlib.sha256(data).hexdigest()
    # (3)
    with write_session(store.engine) as session:
        village = store.village_row(session, slug)
        row = {"village_id": village.id, "sha256": sha256, "media_type": media_type, "size": len(data),
               "data": data, "uploaded": utc_now()}
        dialect = sqlite_dialect if session.get_bind().dialect.name == "sqlite" else pg_dialect
        session.execute(dialect.insert(m.AttachmentRow).values(row).on_conflict_do_nothing())
    return StoredAttachment(sha256, media_type, len(data), _file_name(filename, extension, sha256))


def attachment(store: Store, slug: str, sha256: str) -> tuple[str, bytes]:
    """(media type, bytes) of the village's attachment ``sha256``. Raises NotFound."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        row = session.get(m.AttachmentRow, (village.id, sha256))
        if row is None:
            raise NotFound(f"village {slug!r} has no attachment {sha256}")
        return row.media_type, bytes(row.data)


def _file_name(filename: str, extension: str, sha256: str) -> str:
    """The client's file name without folders, control characters or leading dots, at most 128
    characters, ending in ``extension`` (a WebP photo is kept as JPEG: ``.jpg``); else a name from the hash."""
    base = re.split(r"[/\\]", filename)[-1]
    base = re.sub(r"[\x00-\x1f\x7f-\x9f]", "", base).strip().lstrip(".").strip()
    stem = base.rsplit(".", 1)[0].strip() if "." in base else base
    return f"{stem[: 128 - len(extension)] or sha256[:16]}{extension}"

