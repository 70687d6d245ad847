"""Checking and decoding an uploaded image within the device's memory.

The width and height come from the file's own header (PNG IHDR, JPEG SOFn), so
an image that declares huge dimensions is refused before a single pixel is
decoded — a 100-byte file must not make the device allocate gigabytes. Then:

* a JPEG bigger than `max_decode_pixels` is decoded at 1/2, 1/4 or 1/8 of its
  size directly by libjpeg (IMREAD_REDUCED_COLOR_*), never at full size;
  a progressive JPEG keeps every DCT coefficient of the full image while it
  decodes (2 bytes per sample), so one whose coefficients exceed the budget is
  refused by its header;
* a PNG cannot be decoded reduced, so one over `max_decode_pixels` is refused;
* the EXIF orientation (JPEG APP1 "Exif", PNG eXIf) is applied, so phone photos
  come out upright (`DecodedUpload.image`);
* `UploadGate` bounds how many uploads decode at once: one more is told to come
  back (503) at once instead of queueing memory.

Boxes found in the decoded image are mapped back to the upright image's own
pixels with `DecodedUpload.to_original`.
"""

from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from screwcam.images import without_iccp

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...), not DHT/JPG/DAC.
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Progressive (and lossless/hierarchical) frames: the decoder buffers the whole image.
_WHOLE_IMAGE_SOF = {0xC2, 0xC3, 0xC6, 0xC7, 0xCA, 0xCB, 0xCE, 0xCF}
# Markers without a length field.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_EXIF_ORIENTATION = 0x0112
#: progressive JPEG coefficient memory allowed per decoded pixel of the budget
_COEF_BYTES_PER_BUDGET_PIXEL = 8
_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


class UploadError(ValueError):
    """The upload is not an acceptable image; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImageHeader:
    kind: str  # "png" | "jpeg"
    width: int  # as stored (before the orientation is applied)
    height: int
    orientation: int = 1  # EXIF orientation 1..8 (1 = as stored)
    coef_bytes: int = 0  # progressive JPEG: memory its decoder keeps for coefficients


@dataclass(frozen=True)
class DecodedUpload:
    image: np.ndarray  # BGR, upright, possibly reduced
    scale: int  # upright original pixels per decoded pixel: 1, 2, 4 or 8
    width: int  # the upright original image's size
    height: int
    orientation: int

    def to_original(self, value: float) -> int:
        return int(round(value * self.scale))


def image_header(data: bytes) -> tuple[str, int, int]:
    """("png"|"jpeg", width, height) from the header; UploadError if the bytes are
    not a PNG or JPEG or the header is broken."""
    header = read_header(data)
    return header.kind, header.width, header.height


def read_header(data: bytes) -> ImageHeader:
    if data.startswith(PNG_SIGNATURE):
        return _png_header(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_header(data)
    raise UploadError("not a JPEG or PNG image")


def _png_header(data: bytes) -> ImageHeader:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise UploadError("corrupt PNG: the IHDR header is missing")
    width, height = struct.unpack(">II", data[16:24])
    orientation = 1
    i, n = 8, len(data)
    while i + 8 <= n:  # walk the chunks for eXIf (lengths only, no decompression)
        (length,) = struct.unpack(">I", data[i : i + 4])
        ctype = data[i + 4 : i + 8]
        body = data[i + 8 : i + 8 + length]
        if ctype == b"eXIf" and len(body) == length:
            if body.startswith(b"Exif\0\0"):  # some writers keep the JPEG prefix
                body = body[6:]
            orientation = _tiff_orientation(body)
            break
        if ctype == b"IEND" or length > n:
            break
        i += 12 + length
    return ImageHeader("png", width, height, orientation)


def _jpeg_header(data: bytes) -> ImageHeader:
    i, n = 2, len(data)
    orientation = 1
    while i < n:
        if data[i] != 0xFF:
            raise UploadError("corrupt JPEG: expected a marker in the header")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        if i + 2 > n:
            break
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2:
            raise UploadError("corrupt JPEG: bad segment length")
        segment = data[i + 2 : i + length]
        if marker == 0xE1 and segment.startswith(b"Exif\0\0") and orientation == 1:
            orientation = _tiff_orientation(segment[6:])
        if marker in _SOF_MARKERS:
            if len(segment) < 6:
                break
            height, width, ncomp = struct.unpack(">HHB", segment[1:6])
            coef = 0
            if marker in _WHOLE_IMAGE_SOF:
                coef = _coefficient_bytes(segment, width, height, ncomp)
            return ImageHeader("jpeg", width, height, orientation, coef)
        i += length
    raise UploadError("corrupt JPEG: no frame header (SOF) found")


def _coefficient_bytes(sof: bytes, width: int, height: int, ncomp: int) -> int:
    """Bytes a progressive decoder keeps: 2 per DCT coefficient of every component."""
    comps = []
    for k in range(ncomp):
        j = 6 + 3 * k
        if j + 3 > len(sof):
            raise UploadError("corrupt JPEG: truncated frame header")
        sampling = sof[j + 1]
        comps.append((max(1, sampling >> 4), max(1, sampling & 15)))
    if not comps:
        raise UploadError("corrupt JPEG: a frame without components")
    hmax = max(h for h, _ in comps)
    vmax = max(v for _, v in comps)
    total = 0
    for h, v in comps:
        blocks_x = -(-width * h // (hmax * 8))
        blocks_y = -(-height * v // (vmax * 8))
        # whole MCUs: round up to the sampling factor
        blocks_x = -(-blocks_x // h) * h
        blocks_y = -(-blocks_y // v) * v
        total += blocks_x * blocks_y * 64 * 2
    return total


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of IFD0 in TIFF-structured EXIF data; 1 when
    absent or unreadable (a broken EXIF block is not a broken image)."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    (offset,) = struct.unpack(end + "I", tiff[4:8])
    if offset + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(end + "H", tiff[offset : offset + 2])
    for k in range(min(count, 512)):
        entry = offset + 2 + 12 * k
        if entry + 12 > len(tiff):
            break
        tag, typ = struct.unpack(end + "HH", tiff[entry : entry + 4])
        if tag == _EXIF_ORIENTATION:
            if typ == 3:  # SHORT
                (value,) = struct.unpack(end + "H", tiff[entry + 8 : entry + 10])
            elif typ == 4:  # LONG (seen in the wild)
                (value,) = struct.unpack(end + "I", tiff[entry + 8 : entry + 12])
            else:
                return 1
            return value if 1 <= value <= 8 else 1
    return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored image turned upright per its EXIF orientation (1..8)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def reduction_for(width: int, height: int, max_pixels: int) -> int | None:
    """The smallest JPEG scale 1, 2, 4 or 8 whose decoded pixels fit; None if none."""
    for f in (1, 2, 4, 8):
        if -(-width // f) * -(-height // f) <= max_pixels:
            return f
    return None


def decode_upload(
    data: bytes, max_pixels: int, max_decode_pixels: int | None = None
) -> DecodedUpload:
    """Bytes of a JPEG/PNG -> the upright image (BGR), decoded at most at
    `max_decode_pixels` (default: `max_pixels`), after checking the header."""
    if not data:
        raise UploadError("empty upload: send a JPEG or PNG image")
    budget = max_decode_pixels or max_pixels
    header = read_header(data)
    kind, width, height = header.kind, header.width, header.height
    name = kind.upper()
    if width == 0 or height == 0:
        raise UploadError(f"corrupt {name}: it declares a {width}x{height} image")
    if width * height > max_pixels:
        raise UploadError(
            f"image is {width}x{height} = {width * height} pixels; at most {max_pixels} "
            "are accepted (scale it down first)",
            status=413,
        )
    if kind == "png":
        scale = 1
        if width * height > budget:
            raise UploadError(
                f"PNG image is {width}x{height} = {width * height} pixels; this device decodes "
                f"PNG up to {budget} pixels ([server] max_decode_pixels): scale it down or "
                "send a JPEG (decoded at reduced size)",
                status=413,
            )
    else:
        reduced = reduction_for(width, height, budget)
        if reduced is None:
            raise UploadError(
                f"JPEG image is {width}x{height}; even at 1/8 size it exceeds the "
                f"{budget} pixels this device decodes ([server] max_decode_pixels)",
                status=413,
            )
        scale = reduced
        coef_limit = _COEF_BYTES_PER_BUDGET_PIXEL * budget
        if header.coef_bytes > coef_limit:
            raise UploadError(
                f"progressive JPEG of {width}x{height} needs {header.coef_bytes >> 20} MB to "
                f"decode; this device allows {coef_limit >> 20} MB: save it as a baseline "
                "(non-progressive) JPEG or scale it down",
                status=413,
            )
    flags = _REDUCED[scale] | cv2.IMREAD_IGNORE_ORIENTATION
    if kind == "png":  # a broken colour profile would make libpng warn on every upload
        data = without_iccp(data)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except (cv2.error, zlib.error):
        image = None
    if image is None:
        raise UploadError(f"corrupt {name}: it cannot be decoded")
    if image.shape[1] != -(-width // scale) or image.shape[0] != -(-height // scale):
        raise UploadError(f"corrupt {name}: decoded size differs from its header")
    upright = apply_orientation(image, header.orientation)
    if header.orientation >= 5:
        width, height = height, width
    return DecodedUpload(upright, scale, width, height, header.orientation)


class UploadGate:
    """At most `limit` uploads decode and classify at once; `try_enter()` never
    waits (False = answer 503 and let the client come back)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit)

    def try_enter(self) -> bool:
        return self._sem.acquire(blocking=False)

    def leave(self) -> None:
        self._sem.release()
