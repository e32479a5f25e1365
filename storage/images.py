"""Photos attached to complaints and messages (随手拍): accept only real photos, and store only pixels.

A phone's photo says where it was taken (EXIF GPS), with what phone and when, and may carry XMP, an ICC
profile, comments or a thumbnail; and a file called ``.jpg`` may be a web page, a program, or a JPEG with
a script or a zip archive appended. So nothing is stored as uploaded: ``clean_image`` decodes the pixels
and encodes new bytes from them alone. Pure: no Flask, no database.

Plan (``clean_image``):
  (1) refuse an empty file, or one over MAX_PHOTO_BYTES, before decoding anything;
  (2) identify the file by opening it with Pillow restricted to JPEG (with MPO, the multi-picture JPEG of
      many phone cameras), PNG and WebP, never by its name or the client's media type; refuse it, from its
      header and before decoding any pixel, over MAX_PIXELS (a JPEG: a phone photo is at most 50 Mpx, and
      is decoded at the smallest DCT scale that still gives MAX_EDGE) or over MAX_WHOLE_PIXELS (PNG and
      WebP, which decode whole); then decode its first frame completely, so that a truncated or corrupt
      file is refused here;
  (3) turn it upright as its EXIF Orientation says;
  (4) bring it to 8-bit "RGB", or "RGBA" for a PNG with transparency; JPEG has no alpha, so any other
      transparent image is flattened onto white;
  (5) downscale it, keeping its aspect, so that its longer edge is at most MAX_EDGE;
  (6) copy its pixels alone into a fresh image: no EXIF (nor its GPS), XMP, ICC profile, comment, text
      chunk, palette trick or trailing byte can reach the encoder;
  (7) encode: a PNG stays PNG (a screenshot stays sharp), anything else becomes JPEG at quality 85.
For a given Pillow the output is a function of the input bytes, so equal uploads have equal hashes.

Memory: a process cleans one photo at a time (``_ONE_AT_A_TIME``: a 16 Mpx PNG takes some 300 MB while
it is decoded, converted and scaled), and gives the freed memory back to the system after each (glibc's
``malloc_trim``), so a worker's memory returns to where it was after a burst of photos.

Decompression bombs: Pillow itself warns (``DecompressionBombWarning``) inside ``Image.open`` over its
global ``Image.MAX_IMAGE_PIXELS`` (about 89 Mpx) and raises over twice that. Our limits are lower, so
either means "too many pixels"; the check against our limits right after opening is the guard, and the
global is left alone. The warning is made an error only so that none escapes: ``warnings.catch_warnings``
swaps the process-wide filters while a file is read, which is not thread-safe before Python 3.14's
context-aware warnings, but a race can only leave that filter installed or lose it for one read, and the
limit check does not depend on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import struct
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from PIL import ExifTags, Image

_ONE_AT_A_TIME = threading.Lock()
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6") if sys.platform == "linux" else None

MAX_PHOTO_BYTES: Final = 8 * 1024 * 1024  # upload size limit per photo
MAX_PHOTOS: Final = 4  # per complaint or message
MAX_PIXELS: Final = 50_000_000  # width * height of a JPEG, decoded at a reduced scale; a phone photo fits
MAX_WHOLE_PIXELS: Final = 16_000_000  # of a PNG or WebP, decoded whole; a 4K screenshot is 8.3 Mpx
MAX_EDGE: Final = 2048  # the longer edge after re-encoding
JPEG_QUALITY: Final = 85

ACCEPTED_FORMATS: Final = ("JPEG", "PNG", "WEBP")  # Pillow's format names; JPEG's opener also gives MPO
SHOWN_NAME_CHARS: Final = 80  # a client's file name is quoted in messages, cut to this length
WHITE: Final = (255, 255, 255, 255)

# EXIF 2.32 tag 274 (Orientation): how to turn the stored pixels so that a viewer sees them upright.
# 1 is upright; the same table as Pillow's ``ImageOps.exif_transpose``.
TRANSPOSE_FOR_ORIENTATION: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

RejectionCode = Literal["too_many", "too_large", "not_an_image", "damaged", "too_many_pixels"]


class ImageRejected(ValueError):
    """An upload we will not store. ``field`` is the form field, with the file's index when it came in a
    list (``photos[2]``); ``code`` says why, for clients: ``too_many`` files, a file ``too_large`` in
    bytes, ``not_an_image`` (not a JPEG, PNG or WebP), a ``damaged`` (truncated, corrupt) image, or
    ``too_many_pixels``. The message says why in English and names the file."""

    def __init__(self, message: str, *, field: str, code: RejectionCode) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


@dataclass(frozen=True)
class CleanImage:
    """A photo as we store and serve it. Invariants: ``data`` is a JPEG or PNG (``media_type``) of
    ``width`` x ``height`` pixels, longer edge at most MAX_EDGE, with no metadata; ``sha256`` is the
    lowercase hex SHA-256 of ``data``."""

    data: bytes
    media_type: Literal["image/jpeg", "image/png"]
    sha256: str
    width: int
    height: int


class Upload(Protocol):
    """An uploaded file as a web framework hands it over (werkzeug's FileStorage)."""

    filename: str | None

    def read(self, size: int = -1) -> bytes: ...


def read_uploads(files: Iterable[Upload | None]) -> list[tuple[str, bytes]]:
    """(client file name, bytes) of each uploaded file, for ``clean_images``; each is read to one byte past
    MAX_PHOTO_BYTES, enough to refuse a larger one as such without reading it all. Empty fields are skipped."""
    return [(upload.filename or "", upload.read(MAX_PHOTO_BYTES + 1)) for upload in files if upload]


def clean_images(files: Sequence[tuple[str, bytes]], *, field: str = "photos") -> list[CleanImage]:
    """Each ``(client file name, bytes)`` of ``files`` cleaned by ``clean_image``, in order. Requires at
    most MAX_PHOTOS files; the file at index i (from 0) is named ``<field>[i]`` in errors. Raises
    ImageRejected for the first file refused."""
    if len(files) > MAX_PHOTOS:
        message = f"{field} has {len(files)} files; at most {MAX_PHOTOS} are allowed"
        raise ImageRejected(message, field=field, code="too_many")
    return [clean_image(raw, name=name, field=f"{field}[{index}]") for index, (name, raw) in enumerate(files)]


def clean_image(raw: bytes, *, name: str = "", field: str = "photos") -> CleanImage:
    """``raw`` re-encoded from its pixels alone, by the plan in this module's docstring. ``name`` (the
    client's file name) and ``field`` only name the file in errors. Raises ImageRejected."""
    where = f"{field} ({name[:SHOWN_NAME_CHARS]!r})" if name else field
    # (1)
    if not raw:
        raise ImageRejected(f"{where} is empty", field=field, code="not_an_image")
    if len(raw) > MAX_PHOTO_BYTES:
        message = f"{where} is {len(raw):,} bytes; at most {MAX_PHOTO_BYTES:,} are allowed"
        raise ImageRejected(message, field=field, code="too_large")
    with _ONE_AT_A_TIME:
        try:
            with _reading_untrusted_bytes():
                source = _decode(raw, where=where, field=field)  # (2)
                upright = _upright(source)  # (3)
            as_png = source.format == "PNG"
            pixels = _fit(_eight_bit(upright, keep_alpha=as_png))  # (4), (5)
            fresh = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())  # (6)
            out = io.BytesIO()  # (7)
            if as_png:
                fresh.save(out, "PNG", optimize=True)
            else:
                fresh.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
            del source, upright, pixels
        finally:
            if _LIBC is not None:
                _LIBC.malloc_trim(0)
    data = out.getvalue()
    return CleanImage(
        data=data,
        media_type="image/png" if as_png else "image/jpeg",
        sha256=hashlib.sha256(data).hexdigest(),
        width=fresh.width,
        height=fresh.height,
    )


@contextmanager
def _reading_untrusted_bytes() -> Iterator[None]:
    """Pillow's warnings while it reads an upload: a decompression-bomb warning becomes an error (see
    the module docstring), and its UserWarnings are silenced. Those report malformed data it recovered
    from (a corrupt EXIF block, an invalid APNG chunk); only the recovered pixels are kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _decode(raw: bytes, *, where: str, field: str) -> Image.Image:
    """The first frame of ``raw``, fully decoded, its format and metadata still attached. Requires raw
    non-empty. Raises ImageRejected (not_an_image, too_many_pixels, damaged)."""
    try:
        image = Image.open(io.BytesIO(raw), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(where, field, MAX_WHOLE_PIXELS) from error
    except (OSError, SyntaxError, ValueError) as error:  # PIL.UnidentifiedImageError is an OSError
        message = f"{where} is not a JPEG, PNG or WebP image"
        raise ImageRejected(message, field=field, code="not_an_image") from error
    limit = MAX_PIXELS if image.format in ("JPEG", "MPO") else MAX_WHOLE_PIXELS
    if image.width * image.height > limit:
        raise _too_many_pixels(where, field, limit)
    if image.format in ("JPEG", "MPO"):
        longer = max(image.size)
        image.draft(image.mode, (image.width * MAX_EDGE // longer, image.height * MAX_EDGE // longer))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        message = f"{where} is a damaged or incomplete {image.format} image: {error}"
        raise ImageRejected(message, field=field, code="damaged") from error
    return image


def _too_many_pixels(where: str, field: str, limit: int) -> ImageRejected:
    return ImageRejected(f"{where} has more than {limit:,} pixels", field=field, code="too_many_pixels")


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF Orientation says (Pillow falls back to an XMP ``tiff:Orientation``).
    An unreadable EXIF block or orientation leaves it as stored: it costs the rotation, not the photo.
    Not ``ImageOps.exif_transpose``: it writes the rest of the EXIF back, which on malformed EXIF raises
    ``struct.error`` or ``TypeError``, for metadata we are about to drop."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (SyntaxError, ValueError, OSError, struct.error):  # e.g. a block cut short inside its header
        return image
    method = TRANSPOSE_FOR_ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _eight_bit(image: Image.Image, *, keep_alpha: bool) -> Image.Image:
    """``image`` in "RGBA" if ``keep_alpha`` and it has any transparency, else in "RGB", transparent
    pixels flattened onto white. 16-bit grayscale (PNG's "I;16", little-endian) keeps its high byte:
    Pillow's ``convert`` would clip every value above 255 to white. Its transparent colour key, a 16-bit
    value, is dropped with the low byte."""
    if image.mode == "I;16":
        image = Image.frombytes("L", image.size, image.tobytes()[1::2])
    if not image.has_transparency_data:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    if keep_alpha:
        return rgba
    return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")


def _fit(image: Image.Image) -> Image.Image:
    """``image`` scaled down, aspect kept, so that its longer edge is MAX_EDGE; unchanged if it already
    fits. Each edge stays at least 1 pixel."""
    longer = max(image.size)
    if longer <= MAX_EDGE:
        return image
    size = (max(1, round(image.width * MAX_EDGE / longer)), max(1, round(image.height * MAX_EDGE / longer)))
    # reducing_gap: shrink by an integer factor first (as Image.thumbnail does), then Lanczos; several
    # times faster on a 12 Mpx photo, with no visible difference at this ratio.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
