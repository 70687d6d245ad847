"""Reading image files: the one decoder for photos (`screwcam detect`), photo datasets
(`screwcam.dataset`) and scikit-image's sample photos (`screwcam.photos`).

    >>> image = read_image(Path("shop/torx/a.jpg"))          # BGR uint8, upright

Every file is decoded by OpenCV from its bytes with the EXIF orientation applied (JPEG,
PNG eXIf, WebP, TIFF), so an image comes out as a viewer shows it; a file that cannot
be read or decoded is named in one DatasetError. A PNG's embedded colour profile (iCCP
chunk) is dropped before decoding: OpenCV does no colour management, so the pixels are
the same, and libpng no longer prints "libpng warning: iCCP: known incorrect sRGB
profile" (or "invalid rendering intent") to stderr for a broken profile.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from .errors import DatasetError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def without_iccp(data: bytes) -> bytes:
    """PNG file bytes without their iCCP chunk (anything else, and a PNG whose chunks
    do not add up, is returned as it is)."""
    if not data.startswith(_PNG_SIGNATURE) or b"iCCP" not in data:
        return data
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length  # length, type, data, CRC
        if end > len(data):
            return data  # truncated: let the decoder say what is wrong
        if kind != b"iCCP":
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return b"".join(out)


def read_image(
    path: Path, flags: int = cv2.IMREAD_COLOR, what_to_do: str = "remove or replace it"
) -> np.ndarray:
    """The image file `path` decoded by `cv2.imdecode(..., flags)` (default: 8-bit BGR),
    EXIF orientation applied (unless `flags` is IMREAD_UNCHANGED or holds
    IMREAD_IGNORE_ORIENTATION). A file that cannot be read or is not an image raises a
    DatasetError naming it; `what_to_do` ends that message."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc
    image = None
    if data:
        image = cv2.imdecode(np.frombuffer(without_iccp(data), np.uint8), flags)
    if image is None:
        raise DatasetError(
            f"cannot decode image {path}: the file is empty, corrupt or not an image; {what_to_do}"
        )
    return image
