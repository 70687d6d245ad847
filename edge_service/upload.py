"""Checking an uploaded image before decoding it.

The width and height come from the file's own header (PNG IHDR, JPEG SOFn), so
an image that declares huge dimensions is refused before a single pixel is
decoded — a 100-byte file must not make the device allocate gigabytes.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...), not DHT/JPG/DAC.
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Markers without a length field.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


class UploadError(ValueError):
    """The upload is not an acceptable image; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def image_header(data: bytes) -> tuple[str, int, int]:
    """("png"|"jpeg", width, height) from the header; UploadError if the bytes are
    not a PNG or JPEG or the header is broken."""
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise UploadError("corrupt PNG: the IHDR header is missing")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith(b"\xff\xd8"):
        return ("jpeg", *_jpeg_size(data))
    raise UploadError("not a JPEG or PNG image")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i, n = 2, len(data)
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
        if marker in _SOF_MARKERS:
            if i + 7 > n:
                break
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            return width, height
        i += length
    raise UploadError("corrupt JPEG: no frame header (SOF) found")


def decode_upload(data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes of a JPEG/PNG -> BGR image, checking the declared size first."""
    if not data:
        raise UploadError("empty upload: send a JPEG or PNG image")
    kind, width, height = image_header(data)
    if width == 0 or height == 0:
        raise UploadError(f"corrupt {kind.upper()}: it declares a {width}x{height} image")
    if width * height > max_pixels:
        raise UploadError(
            f"image is {width}x{height} = {width * height} pixels; at most {max_pixels} "
            "are accepted (scale it down first)",
            status=413,
        )
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UploadError(f"corrupt {kind.upper()}: it cannot be decoded")
    if image.shape[1] != width or image.shape[0] != height:
        raise UploadError(f"corrupt {kind.upper()}: decoded size differs from its header")
    return image
