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


def _png_with_chunk(image: np.ndarray, kind: bytes, body: bytes) -> bytes:
    """`image` as PNG bytes with one more chunk (before the image data)."""
    data = cv2.imencode(".png", image)[1].tobytes()
    chunk = struct.pack(">I", len(body)) + kind + body
    chunk += struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    i = data.index(b"IDAT") - 4
    return data[:i] + chunk + data[i:]


def png_with_exif(image: np.ndarray, orientation: int) -> bytes:
    """`image` as PNG bytes with an eXIf chunk holding `orientation`."""
    return _png_with_chunk(image, b"eXIf", _exif(orientation))


def png_with_broken_profile(image: np.ndarray) -> bytes:
    """`image` as PNG bytes with an iCCP colour profile that libpng warns about on
    stderr (scikit-image's page.png has one like it)."""
    return _png_with_chunk(image, b"iCCP", b"broken\0\0" + zlib.compress(b"\0" * 128))


def jpeg_with_exif(image: np.ndarray, orientation: int) -> bytes:
    """`image` as JPEG bytes (quality 95) with an APP1 Exif segment holding `orientation`."""
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    payload = b"Exif\x00\x00" + _exif(orientation)
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]
