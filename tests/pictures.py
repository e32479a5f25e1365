"""Photos the tests upload, made in code (no binary files in the repository)."""

from __future__ import annotations

import io

from PIL import Image


def jpeg_with_gps() -> bytes:
    """A small JPEG whose EXIF carries a GPS position (in Jiande), as a phone camera writes it."""
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (29.0, 36.0, 57.0), 3: "E", 4: (119.0, 17.0, 5.0)}
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue()
