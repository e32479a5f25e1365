"""Specification of ``storage.images``: only real photos are accepted, and what is stored is their pixels,
re-encoded, with no metadata.

Every fixture is made here with Pillow (or by hand, byte by byte, for a PNG too large to draw), so the
repository holds no binary files. Colours are compared with a tolerance where the output is a JPEG.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin

from storage.images import (
    MAX_EDGE,
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
    MAX_PIXELS,
    MAX_WHOLE_PIXELS,
    SHOWN_NAME_CHARS,
    CleanImage,
    ImageRejected,
    clean_image,
    clean_images,
)

RED = (220, 20, 20)
BLUE = (20, 20, 220)
WHITE = (255, 255, 255)
METADATA_KEYS = {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "dpi"}


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def halves(
    size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...], mode: str = "RGB"
) -> Image.Image:
    """An image whose left half is ``left`` and right half ``right``: shows any turn or flip."""
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def opened(clean: CleanImage) -> Image.Image:
    image = Image.open(io.BytesIO(clean.data))
    image.load()
    return image


def near(actual: Any, expected: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def photo(size: tuple[int, int] = (64, 48), fmt: str = "JPEG", **params: Any) -> bytes:
    return encode(halves(size, RED, BLUE), fmt, **params)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def black_1bit_png(width: int, height: int) -> bytes:
    """A valid PNG of ``width`` x ``height`` black 1-bit pixels, written chunk by chunk: each row is a
    filter byte and ceil(width / 8) zero bytes, and zlib squeezes them to a few hundred kilobytes at most.
    Drawing it with Pillow would take a byte of memory per pixel."""
    row = bytes(1 + math.ceil(width / 8))
    compressor = zlib.compressobj(1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def rejected(raw: bytes, **kwargs: str) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        clean_image(raw, **kwargs)
    return caught.value


# --- metadata ------------------------------------------------------------------------------------------


def test_a_phone_photo_loses_its_exif_gps_xmp_icc_profile_and_comment() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SnoopPhone"
    exif[ExifTags.Base.Orientation] = 1
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (31.0, 14.0, 5.5)
    gps[ExifTags.GPS.GPSMapDatum] = "SECRET-DATUM"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>XMP-SECRET</rdf:RDF></x:xmpmeta>'
    raw = photo(exif=exif, icc_profile=icc, xmp=xmp, comment=b"COMMENT-SECRET", dpi=(300, 300))
    source = Image.open(io.BytesIO(raw))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSMapDatum] == "SECRET-DATUM"
    assert METADATA_KEYS - {"XML:com.adobe.xmp"} <= set(source.info)

    clean = clean_image(raw)

    out = opened(clean)
    assert (out.format, clean.media_type) == ("JPEG", "image/jpeg")
    assert dict(out.getexif()) == {}
    assert not METADATA_KEYS & set(out.info)
    for secret in (
        b"SnoopPhone",
        b"SECRET-DATUM",
        b"XMP-SECRET",
        b"COMMENT-SECRET",
        b"Exif\x00\x00",
        icc[:64],
    ):
        assert secret not in clean.data


def test_png_text_chunks_and_exif_are_removed_and_png_stays_png() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "TEXT-SECRET")
    text.add_text("Comment", "ZTXT-SECRET", zip=True)
    text.add_itxt("Location", "村口 ITXT-SECRET", lang="zh", tkey="位置")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SnoopPhone"
    raw = photo(fmt="PNG", pnginfo=text, exif=exif, dpi=(300, 300))
    assert {"Author", "Comment", "Location", "exif", "dpi"} <= set(Image.open(io.BytesIO(raw)).info)

    clean = clean_image(raw)

    out = opened(clean)
    assert (out.format, clean.media_type) == ("PNG", "image/png")
    assert out.info == {}
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"pHYs", b"SnoopPhone"):
        assert chunk not in clean.data
    assert out.tobytes() == halves((64, 48), RED, BLUE).tobytes()  # lossless: PNG in, same pixels out


# --- orientation ---------------------------------------------------------------------------------------


def test_a_photo_taken_holding_the_phone_upright_is_stored_upright() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored turned 90° anticlockwise: the viewer turns it clockwise
    clean = clean_image(photo((64, 32), exif=exif))

    out = opened(clean)
    assert (clean.width, clean.height) == out.size == (32, 64)
    assert near(out.getpixel((16, 8)), RED)  # the stored left half is now on top
    assert near(out.getpixel((16, 56)), BLUE)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_pillow_would(orientation: int) -> None:
    pattern = Image.new("RGB", (3, 2))
    pattern.putdata([(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 255, 255)])
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    raw = encode(pattern, "PNG", exif=exif)

    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(raw)))
    out = opened(clean_image(raw))
    assert (out.size, out.tobytes()) == (expected.size, expected.tobytes())


ASCII, SHORT = 2, 3  # TIFF field types


def tiff_entry(tag: int, kind: int, count: int, value: bytes) -> bytes:
    return struct.pack(">HHI", tag, kind, count) + value.ljust(4, b"\x00")


def exif_block(*entries: bytes) -> bytes:
    """An EXIF block written by hand (big-endian TIFF, one IFD of ``entries``), so that it can be wrong
    on purpose."""
    return b"Exif\x00\x00MM\x00*" + struct.pack(">IH", 8, len(entries)) + b"".join(entries) + bytes(4)


ORIENTATION_6 = tiff_entry(ExifTags.Base.Orientation, SHORT, 1, struct.pack(">H", 6))
DAMAGED_EXIF = {
    "short-header": b"Exif\x00\x00MM\x00*",  # Pillow raises struct.error
    "short-entry": exif_block(ORIENTATION_6)[:-10],  # Pillow warns "Corrupt EXIF data"
    "bad-byte-order": b"Exif\x00\x00XX\x00*" + bytes(4),  # Pillow raises SyntaxError
}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("block", DAMAGED_EXIF.values(), ids=DAMAGED_EXIF.keys())
def test_a_damaged_exif_block_costs_the_rotation_not_the_photo(block: bytes, fmt: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clean = clean_image(photo(fmt=fmt, exif=block))
    assert caught == []
    assert (clean.width, clean.height) == (64, 48)
    assert near(opened(clean).getpixel((8, 24)), RED)
    assert b"Exif" not in clean.data


def test_an_exif_block_that_pillow_cannot_write_back_still_turns_the_photo() -> None:
    """Found by fuzzing: ``ImageOps.exif_transpose`` writes back the EXIF it keeps, and raises
    struct.error for an ASCII value under a tag that TIFF types SHORT (0x0123, GrayResponseCurve)."""
    block = exif_block(ORIENTATION_6, tiff_entry(0x0123, ASCII, 4, b"Cam\x00"))
    clean = clean_image(photo((64, 32), exif=block))
    assert (clean.width, clean.height) == (32, 64)
    assert near(opened(clean).getpixel((16, 8)), RED)


# --- formats and pixel modes ---------------------------------------------------------------------------


def test_a_webp_becomes_a_jpeg_with_transparency_flattened_onto_white() -> None:
    raw = encode(halves((64, 48), (*RED, 0), (*BLUE, 255), mode="RGBA"), "WEBP", lossless=True)
    out = opened(clean := clean_image(raw))
    assert (out.format, out.mode, clean.media_type) == ("JPEG", "RGB", "image/jpeg")
    assert near(out.getpixel((8, 24)), WHITE)
    assert near(out.getpixel((56, 24)), BLUE)


def test_a_transparent_png_stays_transparent_and_an_opaque_one_is_rgb() -> None:
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([*RED, *BLUE])
    transparent = opened(clean_image(encode(palette, "PNG", transparency=1)))
    assert (transparent.mode, transparent.getpixel((0, 0))) == ("RGBA", (*BLUE, 0))

    opaque = opened(clean_image(encode(palette, "PNG")))
    assert (opaque.mode, opaque.getpixel((0, 0))) == ("RGB", BLUE)


def test_sixteen_bit_grey_keeps_its_high_byte_instead_of_turning_white() -> None:
    grey = Image.new("I;16", (4, 4), 40000)  # 40000 >> 8 == 156
    assert opened(clean_image(encode(grey, "PNG"))).getpixel((0, 0)) == (156, 156, 156)


@pytest.mark.parametrize(
    ("mode", "colour"), [("CMYK", (0, 255, 255, 0)), ("L", 128), ("1", 1)], ids=["cmyk", "grey", "1-bit"]
)
def test_other_jpeg_and_png_modes_become_rgb(mode: str, colour: Any) -> None:
    source = Image.new(mode, (8, 8), colour)
    expected = source.convert("RGB").getpixel((0, 0))
    for fmt in ("JPEG", "PNG") if mode != "CMYK" else ("JPEG",):
        out = opened(clean_image(encode(source, fmt)))
        assert out.mode == "RGB"
        assert near(out.getpixel((4, 4)), expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "out_format"), [("PNG", "PNG"), ("WEBP", "JPEG"), ("MPO", "JPEG")], ids=["apng", "webp", "mpo"]
)
def test_an_animation_or_multi_picture_file_keeps_only_its_first_frame(fmt: str, out_format: str) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, BLUE)]
    raw = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    assert getattr(Image.open(io.BytesIO(raw)), "n_frames", 1) == 2

    out = opened(clean_image(raw))
    assert (out.format, getattr(out, "n_frames", 1)) == (out_format, 1)
    assert near(out.getpixel((16, 16)), RED)


def test_the_hash_is_of_the_data_and_cleaning_is_deterministic() -> None:
    raw = photo()
    clean = clean_image(raw)
    assert clean.sha256 == hashlib.sha256(clean.data).hexdigest()
    assert clean_image(raw) == clean


# --- what is not a photo -------------------------------------------------------------------------------


def truncated_jpeg() -> bytes:
    raw = photo((256, 256))
    return raw[: len(raw) // 2]


NOT_PHOTOS: dict[str, tuple[Callable[[], bytes], str]] = {
    "html": (lambda: b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "not_an_image"),
    "windows-exe": (lambda: b"MZ\x90\x00\x03" + bytes(59) + b"PE\x00\x00" + bytes(200), "not_an_image"),
    "svg": (
        lambda: (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><script>alert(1)</script></svg>'
        ),
        "not_an_image",
    ),
    "gif": (lambda: encode(Image.new("P", (8, 8)), "GIF"), "not_an_image"),
    "pdf-holding-a-jpeg": (lambda: photo(fmt="PDF"), "not_an_image"),
    "empty": (lambda: b"", "not_an_image"),
    "truncated-jpeg": (truncated_jpeg, "damaged"),
}


@pytest.mark.parametrize(("make", "code"), NOT_PHOTOS.values(), ids=NOT_PHOTOS.keys())
def test_files_that_are_not_jpeg_png_or_webp_are_refused(make: Callable[[], bytes], code: str) -> None:
    error = rejected(make(), name="photo.jpg")
    assert (error.code, error.field) == (code, "photos")
    assert str(error).startswith("photos ('photo.jpg') is ")


def test_a_truncated_jpeg_is_called_damaged() -> None:
    assert "is a damaged or incomplete JPEG image: image file is truncated" in str(rejected(truncated_jpeg()))


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.js", "alert(1)")
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "tail", "end"),
    [
        ("JPEG", b"<script>alert(1)</script>", b"\xff\xd9"),
        ("JPEG", zip_archive(), b"\xff\xd9"),
        ("PNG", zip_archive(), png_chunk(b"IEND", b"")),
    ],
    ids=["jpeg+script", "jpeg+zip", "png+zip"],
)
def test_a_polyglot_is_stored_without_its_trailing_bytes(fmt: str, tail: bytes, end: bytes) -> None:
    clean = clean_image(photo(fmt=fmt) + tail)
    assert clean.data.endswith(end)
    for marker in (b"<script>", b"PK\x03\x04", b"PK\x05\x06", b"payload.js"):
        assert marker not in clean.data


# --- limits --------------------------------------------------------------------------------------------


def test_a_file_over_max_photo_bytes_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = photo()
    raw += bytes(MAX_PHOTO_BYTES + 1 - len(raw))

    def never(*args: object, **kwargs: object) -> Image.Image:
        raise AssertionError("Image.open was reached")

    monkeypatch.setattr(Image, "open", never)
    error = rejected(raw, name="big.jpg")
    assert error.code == "too_large"
    assert str(error) == "photos ('big.jpg') is 8,388,609 bytes; at most 8,388,608 are allowed"


def test_a_file_of_exactly_max_photo_bytes_is_accepted() -> None:
    raw = photo()
    assert clean_image(raw + bytes(MAX_PHOTO_BYTES - len(raw))).data == clean_image(raw).data


PILLOW_LIMIT = Image.MAX_IMAGE_PIXELS or 0  # warns above this, raises above twice this
OVER_PIXEL_LIMITS = {
    "ours": (8000, 6000),
    "pillows-warning": (math.isqrt(PILLOW_LIMIT * 3 // 2),) * 2,
    "pillows-error": (math.isqrt(PILLOW_LIMIT * 3),) * 2,
}


def test_our_pixel_limits_are_below_pillows() -> None:
    width, height = OVER_PIXEL_LIMITS["ours"]
    assert MAX_WHOLE_PIXELS < width * height <= PILLOW_LIMIT  # so the three cases below test three code paths
    assert MAX_PIXELS < PILLOW_LIMIT


@pytest.mark.parametrize("size", OVER_PIXEL_LIMITS.values(), ids=OVER_PIXEL_LIMITS.keys())
def test_an_image_over_max_pixels_is_refused_and_no_warning_escapes(size: tuple[int, int]) -> None:
    raw = black_1bit_png(*size)
    assert len(raw) < MAX_PHOTO_BYTES
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = rejected(raw, name="bomb.png")
    assert caught == []
    assert (error.code, str(error)) == (
        "too_many_pixels",
        "photos ('bomb.png') has more than 16,000,000 pixels",
    )
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT


def test_pillows_bomb_warning_is_refused_even_when_warnings_are_errors() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rejected(black_1bit_png(*OVER_PIXEL_LIMITS["pillows-warning"])).code == "too_many_pixels"


@pytest.mark.parametrize(
    ("size", "expected"),
    [((4000, 3000), (2048, 1536)), ((1000, 5000), (410, 2048)), ((2048, 100), (2048, 100))],
    ids=["landscape", "portrait", "fits"],
)
def test_a_large_photo_is_scaled_down_to_max_edge_keeping_its_aspect(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    clean = clean_image(photo(size, quality=50))
    assert max(expected) == MAX_EDGE
    assert (clean.width, clean.height) == opened(clean).size == expected


# --- several files -------------------------------------------------------------------------------------


def test_up_to_max_photos_are_cleaned_in_order() -> None:
    files = [(f"{n}.jpg", photo((16 + n, 16))) for n in range(MAX_PHOTOS)]
    assert [clean.width for clean in clean_images(files)] == [16 + n for n in range(MAX_PHOTOS)]


def test_more_than_max_photos_are_refused_naming_the_field() -> None:
    with pytest.raises(ImageRejected, match=r"^attachments has 5 files; at most 4 are allowed$") as caught:
        clean_images([("a.jpg", photo())] * (MAX_PHOTOS + 1), field="attachments")
    assert (caught.value.code, caught.value.field) == ("too_many", "attachments")


def test_an_error_names_the_files_index_and_name() -> None:
    files = [("ok.jpg", photo()), ("evil.html", b"<html><script>alert(1)</script></html>")]
    with pytest.raises(
        ImageRejected, match=r"^photos\[1\] \('evil\.html'\) is not a JPEG, PNG or WebP image$"
    ) as caught:
        clean_images(files)
    assert (caught.value.code, caught.value.field) == ("not_an_image", "photos[1]")


def test_a_client_file_name_is_quoted_escaped_and_cut() -> None:
    name = "cat\u202egpj.exe\n" + "x" * 200  # U+202E (right-to-left override) shows it as "...exe.jpg"
    error = rejected(b"", name=name, field="photos[0]")
    shown = "cat\\u202egpj.exe\\n" + "x" * (SHOWN_NAME_CHARS - 12)
    assert str(error) == f"photos[0] ('{shown}') is empty"


# --- robustness ----------------------------------------------------------------------------------------

EXIF_6 = exif_block(ORIENTATION_6)
SEEDS = [photo(exif=EXIF_6), photo(fmt="PNG", exif=EXIF_6), photo(fmt="WEBP", exif=EXIF_6), truncated_jpeg()]


@settings(max_examples=150, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_a_corrupted_photo_is_cleaned_or_refused_never_anything_else(
    seed: bytes, edits: list[tuple[int, int]]
) -> None:
    raw = bytearray(seed)
    for position, value in edits:
        raw[position % len(raw)] = value
    try:
        clean = clean_image(bytes(raw))
    except ImageRejected as error:
        assert error.code in {"not_an_image", "damaged", "too_many_pixels"}
    else:
        assert clean.sha256 == hashlib.sha256(clean.data).hexdigest()


def flat_jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 60)).save(out, "JPEG", quality=80)
    return out.getvalue()


def test_a_50_mpx_phone_photo_is_accepted_decoded_at_a_reduced_scale() -> None:
    cleaned = clean_image(flat_jpeg(8160, 6120))  # a 50 Mpx phone camera's photo
    assert (cleaned.width, cleaned.height) == (2048, 1536)


def test_a_jpeg_over_50_mpx_is_refused_before_its_pixels_are_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = flat_jpeg(8200, 6200)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels were decoded"))
    assert (rejected(raw, name="big.jpg").code, MAX_PIXELS) == ("too_many_pixels", 50_000_000)


def test_the_attackers_png_of_40_mpx_is_refused_before_its_pixels_are_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """155 KB that decode to 6324 x 6324 RGBA (160 MB of pixels): it took 75 s of CPU and 3 GB a worker."""
    out = io.BytesIO()
    Image.new("RGBA", (6324, 6324), (10, 20, 30, 255)).save(out, "PNG")
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels were decoded"))
    assert rejected(out.getvalue(), name="bomb.png").code == "too_many_pixels"


MEMORY_PROBE = """
import io, sys, threading
from PIL import Image
from storage.images import clean_image
def rss_mb(): return int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20
out = io.BytesIO()
Image.new("RGBA", (4000, 4000), (10, 20, 30, 255)).save(out, "PNG")
raw = out.getvalue()
clean_image(raw)  # imports and first-use allocations
before = rss_mb()
threads = [threading.Thread(target=clean_image, args=(raw,)) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(before, rss_mb())
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/statm")
def test_a_burst_of_large_photos_leaves_a_process_as_it_found_it() -> None:
    """Eight 16 Mpx PNGs cleaned by eight threads at once: one at a time, and the memory given back."""
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1], timeout=300)
    before, after = map(int, probe.stdout.split())
    assert after - before < 64, f"resident memory grew from {before} MB to {after} MB"
