"""Upload decoding in-process: header parsing, EXIF orientation, reduced decoding,
the progressive-JPEG budget and the concurrency gate (the server side of these is
in test_serving.py)."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
from _image_helpers import png_with_broken_profile

from screwcam.edge_service.upload import (
    UploadError,
    UploadGate,
    apply_orientation,
    decode_upload,
    read_header,
    reduction_for,
)


def _exif_app1(orientation: int, little: bool = True, typ: int = 3) -> bytes:
    end = "<" if little else ">"
    value = (
        struct.pack(end + "HH", orientation, 0) if typ == 3 else struct.pack(end + "I", orientation)
    )
    entry = struct.pack(end + "HHI", 0x0112, typ, 1) + value
    tiff = (b"II*\0" if little else b"MM\0*") + struct.pack(end + "IH", 8, 1) + entry + b"\0" * 4
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _jpeg(image: np.ndarray, **params: int) -> bytes:
    flags = [v for kv in params.items() for v in (getattr(cv2, kv[0]), kv[1])]
    return cv2.imencode(".jpg", image, flags)[1].tobytes()


@pytest.fixture(scope="module")
def marked() -> np.ndarray:
    """A 60x40 (w x h) image with a white block in its top-left corner."""
    image = np.zeros((40, 60, 3), np.uint8)
    image[:10, :20] = 255
    return image


@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("typ", [3, 4])
def test_exif_orientation_is_read_in_both_byte_orders(little: bool, typ: int) -> None:
    data = _jpeg(np.zeros((8, 8, 3), np.uint8))
    data = data[:2] + _exif_app1(6, little, typ) + data[2:]
    assert read_header(data).orientation == 6


def test_broken_exif_is_ignored_not_fatal(marked: np.ndarray) -> None:
    data = _jpeg(marked)
    app1 = b"\xff\xe1\x00\x10Exif\0\0II*\0\xff\xff\xff\xff"
    upload = decode_upload(data[:2] + app1 + data[2:], max_pixels=10_000)
    assert upload.orientation == 1 and upload.image.shape == (40, 60, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_turns_the_image_upright(marked: np.ndarray, orientation: int) -> None:
    upright = apply_orientation(marked, orientation)
    expected_shape = (60, 40, 3) if orientation >= 5 else (40, 60, 3)
    assert upright.shape == expected_shape
    # each orientation moves the corner block somewhere else; 1 keeps it top-left
    corners = {
        "tl": upright[0, 0, 0],
        "tr": upright[0, -1, 0],
        "bl": upright[-1, 0, 0],
        "br": upright[-1, -1, 0],
    }
    where = {1: "tl", 2: "tr", 3: "br", 4: "bl", 5: "tl", 6: "tr", 7: "br", 8: "bl"}
    assert [k for k, v in corners.items() if v] == [where[orientation]]


def test_big_jpegs_are_decoded_reduced() -> None:
    assert reduction_for(2000, 2000, 4_000_000) == 1
    assert reduction_for(4000, 3000, 4_000_000) == 2
    assert reduction_for(8000, 6000, 4_000_000) == 4
    assert reduction_for(100_000, 100_000, 4_000_000) is None
    image = np.full((1200, 1600, 3), 128, np.uint8)
    upload = decode_upload(_jpeg(image), max_pixels=20_000_000, max_decode_pixels=500_000)
    assert upload.scale == 2 and upload.image.shape == (600, 800, 3)
    assert (upload.width, upload.height) == (1600, 1200)
    assert upload.to_original(10) == 20


def test_progressive_jpeg_over_the_budget_is_refused_by_its_header() -> None:
    image = np.full((1200, 1600, 3), 128, np.uint8)
    progressive = _jpeg(image, IMWRITE_JPEG_PROGRESSIVE=1)
    header = read_header(progressive)
    assert header.coef_bytes >= 1600 * 1200 * 2  # luma alone: 2 bytes per sample
    with pytest.raises(UploadError) as info:
        decode_upload(progressive, max_pixels=20_000_000, max_decode_pixels=200_000)
    assert info.value.status == 413 and "progressive" in str(info.value)
    # within the budget it decodes
    assert decode_upload(progressive, 20_000_000, 4_000_000).image.shape == (1200, 1600, 3)
    assert read_header(_jpeg(image)).coef_bytes == 0  # baseline: streamed


def test_png_over_the_decode_budget_is_refused() -> None:
    png = cv2.imencode(".png", np.zeros((1000, 1000, 3), np.uint8))[1].tobytes()
    with pytest.raises(UploadError) as info:
        decode_upload(png, max_pixels=20_000_000, max_decode_pixels=500_000)
    assert info.value.status == 413 and "PNG" in str(info.value)


def test_a_broken_png_colour_profile_is_dropped_quietly(capfd) -> None:
    image = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    capfd.readouterr()
    decoded = decode_upload(png_with_broken_profile(image), max_pixels=1_000_000)
    assert np.array_equal(decoded.image, image)
    assert "libpng" not in capfd.readouterr().err  # every upload would print it


def test_the_gate_never_waits() -> None:
    gate = UploadGate(2)
    assert gate.try_enter() and gate.try_enter()
    assert not gate.try_enter()
    gate.leave()
    assert gate.try_enter()
