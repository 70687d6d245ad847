"""Real photographs as backgrounds, clutter and negatives, offline.

scikit-image ships a handful of real photographs inside its wheel (``skimage/data``:
brick, grass, gravel, coffee, camera, astronaut, chelsea, rocket, page, text, moon,
coins, ...). This module reads those files straight from the installed package's data
folder with OpenCV (`screwcam.images.read_image`, as every image file is read). It never
calls ``skimage.data.*`` functions (some of those download through pooch) and never
touches the network.

scikit-image is a training-time dependency (the ``[train]`` extra); the device never
needs this module.

    >>> rng = np.random.default_rng(0)
    >>> tile = random_crop(rng, (128, 96))          # BGR uint8, 96 rows x 128 columns
    >>> coins = coin_patches()                      # real round metal objects (negatives)
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import cv2
import numpy as np

from .errors import DatasetError
from .images import read_image

# Real photographs (not drawings, charts or synthetic test patterns) in skimage/data.
PHOTOS: tuple[str, ...] = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "rocket.jpg",
    "text.png",
)
# Photos without an up or a reading direction (flipping them looks just as real).
_ORIENTLESS = frozenset(
    ("brick.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "moon.png")
)


def _missing(what: str) -> DatasetError:
    return DatasetError(what)


@functools.lru_cache(maxsize=1)
def data_dir() -> Path:
    """The installed scikit-image's data folder (without importing scikit-image)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise _missing(
            "scikit-image is not installed, so its sample photographs are not available; "
            "install the training extra: pip install 'screwcam[train]'"
        )
    folder = Path(spec.origin).parent / "data"
    if not folder.is_dir():
        raise _missing(f"scikit-image has no data folder at {folder}; reinstall scikit-image")
    return folder


@functools.lru_cache(maxsize=1)
def available() -> tuple[str, ...]:
    """The photo file names of PHOTOS that exist in the installed scikit-image."""
    folder = data_dir()
    return tuple(name for name in PHOTOS if (folder / name).is_file())


@functools.lru_cache(maxsize=64)
def decode_photo(name: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """One photo by file name (e.g. 'brick.png') as OpenCV decodes it with `flags`
    (IMREAD_COLOR: BGR uint8; IMREAD_GRAYSCALE: the decoder's own gray, which may differ
    by a level or so from `load_photo(name, gray=True)`). Read-only and shared."""
    if name not in PHOTOS:
        raise _missing(f"unknown sample photo {name!r}; known photos: {', '.join(PHOTOS)}")
    image = read_image(data_dir() / name, flags, "reinstall scikit-image")
    image.setflags(write=False)
    return image


def load_photo(name: str, gray: bool = False) -> np.ndarray:
    """One photo by file name (e.g. 'brick.png') as BGR uint8, or gray if asked.
    The returned array is read-only and shared: copy it before drawing on it."""
    image = decode_photo(name)
    if gray:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image


def random_crop(
    rng: np.random.Generator,
    size: tuple[int, int],
    names: "tuple[str, ...] | None" = None,
    gray: bool = False,
    scale: tuple[float, float] = (0.5, 2.0),
    fast: bool = False,
) -> np.ndarray:
    """A random crop of a random photo, resized to size=(width, height).

    The crop covers between scale[0] and scale[1] times the output size in photo pixels
    (smaller crops are enlarged, larger ones reduced), is randomly flipped if the photo
    is a texture without an up (brick, grass, gravel, ...), and is taken
    from the photos in `names` (default: all available). fast=True reduces with bilinear
    instead of area interpolation (aliases, but is quicker for blurred uses)."""
    width, height = int(size[0]), int(size[1])
    pool = names or available()
    name = pool[int(rng.integers(len(pool)))]
    image = load_photo(name, gray=gray)
    ih, iw = image.shape[:2]
    factor = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    cw = int(np.clip(round(width * factor), 4, iw))
    ch = int(np.clip(round(height * factor), 4, ih))
    # Keep the aspect ratio when the photo is too small for the wanted crop.
    ratio = min(cw / (width * factor), ch / (height * factor))
    cw, ch = max(4, int(width * factor * ratio)), max(4, int(height * factor * ratio))
    x = int(rng.integers(0, iw - cw + 1))
    y = int(rng.integers(0, ih - ch + 1))
    crop = image[y : y + ch, x : x + cw]
    flip_h, flip_v = rng.random() < 0.5, rng.random() < 0.5
    if name in _ORIENTLESS:  # textures may be flipped; people, text and rockets not
        crop = crop[:: -1 if flip_v else 1, :: -1 if flip_h else 1]
    interp = cv2.INTER_AREA if cw > width and not fast else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=interp)


def tiles(
    rng: np.random.Generator, size: tuple[int, int], n: int = 4, gray: bool = False
) -> np.ndarray:
    """A collage of n random photo crops: a cluttered, real-texture background of
    size=(width, height)."""
    width, height = int(size[0]), int(size[1])
    canvas = random_crop(rng, (width, height), gray=gray)
    for _ in range(max(0, n - 1)):
        w = int(rng.integers(max(8, width // 5), max(9, width // 2)))
        h = int(rng.integers(max(8, height // 5), max(9, height // 2)))
        x = int(rng.integers(0, max(1, width - w)))
        y = int(rng.integers(0, max(1, height - h)))
        canvas[y : y + h, x : x + w] = random_crop(rng, (w, h), gray=gray)
    return canvas


@functools.lru_cache(maxsize=1)
def _coins() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    gray = load_photo("coins.png", gray=True)
    # The coins are brighter than the table; the background brightness drifts, so
    # threshold against a heavily blurred copy of the photo.
    local = cv2.GaussianBlur(gray, (0, 0), 25)
    raw = (gray.astype(np.int16) - local.astype(np.int16) > 8).astype(np.uint8)
    closed = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    mask = cv2.morphologyEx(closed, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    patches = []
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if area < 300 or not 0.6 < w / h < 1.6 or area < 0.5 * w * h:
            continue
        pad = 3
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(gray.shape[1], x + w + pad), min(gray.shape[0], y + h + pad)
        patch = gray[y0:y1, x0:x1].copy()
        blob = (labels[y0:y1, x0:x1] == i).astype(np.uint8) * 255
        blob = cv2.morphologyEx(blob, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
        patch.setflags(write=False)
        blob.setflags(write=False)
        patches.append((patch, blob))
    return tuple(patches)


def coin_patches() -> list[tuple[np.ndarray, np.ndarray]]:
    """Real coins cut from coins.png: a list of (gray uint8 patch, uint8 mask 0/255).
    Round, metallic, embossed, and not screw heads: good negatives and distractors."""
    return list(_coins())
