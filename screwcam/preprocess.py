"""The one preprocessing function: a frame region in, the model's 28x28 input out.

Slicing, synthetic data, training, batch testing and the live service all call
`preprocess` / `preprocess_many` (or `to_model_input` for an image that already is
the crop). Nothing else in screwcam re-implements these steps. Change them and you
must bump PREPROCESS_VERSION: model bundles record the version they were trained
with and the service refuses a bundle whose version differs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

INPUT_SIZE = 28
PREPROCESS_VERSION = 1
# Extra context around a head's box, as a fraction of the box's longer side, per side.
CROP_MARGIN = 0.12
# Contrast stretch: these percentiles of the crop map to 0 and 255.
_LOW_PCT, _HIGH_PCT = 1.0, 99.0
_MIN_SPREAD = 8.0  # below this the crop is flat; stretching would only amplify noise

BoxLike = Sequence[int]  # (x, y, w, h) in the frame's pixels


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR, BGRA or gray uint8 image -> gray uint8 image."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a gray, BGR or BGRA image, got shape {image.shape}")


def square_region(box: BoxLike, margin: float = CROP_MARGIN) -> tuple[int, int, int]:
    """The square (x0, y0, side) centred on `box`, with `margin` of the box's
    longer side added on every side. It may reach outside the frame."""
    x, y, w, h = (int(v) for v in box[:4])
    side = max(1, int(round(max(w, h) * (1.0 + 2.0 * margin))))
    cx2, cy2 = 2 * x + w, 2 * y + h  # twice the centre, to stay in integers
    return (cx2 - side) // 2, (cy2 - side) // 2, side


def crop_square(gray: np.ndarray, box: BoxLike, margin: float = CROP_MARGIN) -> np.ndarray:
    """Cut the square around `box` out of a gray frame; parts outside the frame are
    filled by replicating the frame's edge, so a head at the border keeps its centre."""
    x0, y0, side = square_region(box, margin)
    height, width = gray.shape[:2]
    x1, y1 = x0 + side, y0 + side
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return gray[y0:y1, x0:x1]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, width), min(y1, height)
    if cx0 >= cx1 or cy0 >= cy1:
        raise ValueError(f"box {tuple(box)} lies outside the {width}x{height} frame")
    inner = gray[cy0:cy1, cx0:cx1]
    return cv2.copyMakeBorder(inner, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)


def normalize(small: np.ndarray) -> np.ndarray:
    """Contrast-stretch a 28x28 crop so the 1st..99th percentiles span 0..255.
    Makes dim, overexposed and evenly lit crops look alike to the model. Takes one
    crop (28, 28) or a batch (N, 28, 28); each crop is stretched on its own."""
    flat = small.reshape(*small.shape[:-2], -1)
    k_low = int(_LOW_PCT / 100.0 * (flat.shape[-1] - 1))
    k_high = int(_HIGH_PCT / 100.0 * (flat.shape[-1] - 1))
    part = np.partition(flat, (k_low, k_high), axis=-1)
    low = part[..., k_low : k_low + 1].astype(np.float64)
    spread = part[..., k_high : k_high + 1].astype(np.float64) - low
    flat_crop = spread < _MIN_SPREAD  # a flat crop: stretching would only amplify noise
    scale = (255.0 / np.where(flat_crop, 1.0, spread)).astype(np.float32)
    out = (flat.astype(np.float32) - low.astype(np.float32)) * scale
    # Round (not truncate) so normalize is idempotent: a stored dataset sample,
    # normalized again when loaded, is bit-identical to what the service feeds the model.
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    out[np.broadcast_to(flat_crop, out.shape)] = 128
    return out.reshape(small.shape)


def to_model_input(image: np.ndarray) -> np.ndarray:
    """An image that already is the crop (any size, gray or BGR) -> (28, 28) uint8.
    A 28x28 image (the thesis's format) is only normalized."""
    gray = to_gray(image)
    if gray.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {gray.dtype}")
    if gray.shape != (INPUT_SIZE, INPUT_SIZE):
        gray = cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return normalize(gray)


def preprocess(frame: np.ndarray, box: BoxLike, margin: float = CROP_MARGIN) -> np.ndarray:
    """A frame (gray or BGR) and a head's box -> the model's (28, 28) uint8 input."""
    return to_model_input(crop_square(to_gray(frame), box, margin))


def preprocess_many(
    frame: np.ndarray, boxes: Sequence[BoxLike], margin: float = CROP_MARGIN
) -> np.ndarray:
    """All heads of one frame -> (N, 28, 28) uint8, ready for one classifier call.
    The same steps as `preprocess`, with the contrast stretch done for all at once."""
    gray = to_gray(frame)
    out = np.empty((len(boxes), INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    for i, box in enumerate(boxes):
        crop = crop_square(gray, box, margin)
        out[i] = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return normalize(out) if len(boxes) else out
