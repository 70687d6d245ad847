"""Image files as a phone writes them: JPEG and PNG with an EXIF orientation, made
byte by byte (OpenCV writes no EXIF)."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def _exif(orientation: int) -> bytes:
    """A little-endian TIFF block with one IFD0 entry: Orientation."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    return b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)


def png_with_exif(image: np.ndarray, orientation: int) -> bytes:
    """`image` as PNG bytes with an eXIf chunk holding `orientation`."""
    data = cv2.imencode(".png", image)[1].tobytes()
    body = _exif(orientation)
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + body) & 0xFFFFFFFF)
    i = data.index(b"IDAT") - 4
    return data[:i] + chunk + data[i:]


def jpeg_with_exif(image: np.ndarray, orientation: int) -> bytes:
    """`image` as JPEG bytes (quality 95) with an APP1 Exif segment holding `orientation`."""
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    payload = b"Exif\x00\x00" + _exif(orientation)
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]
