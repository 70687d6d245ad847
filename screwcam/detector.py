"""The learned head detector: a small int8 network on LiteRT that boxes every screw head.

The detector is a part of the model bundle (`meta.json` -> `parts.detector`, file
`detector.tflite`). Its input is the gray frame letterboxed to the network's own input
size (320x256: a 640x480 frame at half size with 8 rows of padding above and below);
its two outputs live on a grid of cells `stride` (8) input pixels wide:

- heat (gh, gw, 1): the probability that a head's centre lies in the cell
- box  (gh, gw, 4): the centre's offset from the cell's corner (in cells) and the
  box's log width and log height (in cells)

A head is a local maximum of the heat map above the threshold; its box is decoded from
the box output at that cell and mapped back to the frame's own pixels; heads whose
centres lie inside a stronger head's box core are dropped (non-maximum suppression by
distance, plus IoU). Each box is then snapped to the head's own outline where the
classical outline finder (one pass over the frame, on the letterbox's own scaled copy when
it is the finder's working size) finds one that agrees with it
(`screwcam.heads.refine_boxes`): the network finds the heads, the outlines make their
boxes tight. A head's score is its heat, doubled when an outline confirms it: a weak
peak (a plain hex head on a bright surface) counts when its outline is there.

A detector may carry a **box regressor** (`regressor.tflite`, named in the detector's
entry under `regressor`): a small int8 network that looks at each proposed box's
surroundings (the box plus 0.6 of its side on every side, as a 28x28 crop) and moves and
resizes the box onto the whole head. On a head whose face has the surface's own tone
the heat map boxes the recess alone; outlines cannot fix that (there is none to see),
the regressor can. It runs on every candidate, before the verifier.

A detector trained with a second stage carries a **verifier** (`verifier.tflite`, named
in the detector's entry under `verifier`): a small int8 classifier that looks at each
candidate box again at the frame's full resolution, in the classifier's own 28x28 crop
(`preprocess.preprocess_many`), and says head or not. The heat map sees the frame at
half size, where a screw's recess is a handful of pixels; plain discs, washers, coins and
rivets light it up too. With a verifier the detector proposes boxes down to a lower heat
(`detector_threshold`) and keeps those the verifier accepts (`threshold`); both were
chosen together by F1 on validation scenes. Because the crops are the classifier's,
`find_with_crops` hands them on and the live pipeline cuts every head once.

A photo is larger than the network's frame: a 12 Mpx one letterboxed whole is shrunk by
12, and a head under ~90 px vanishes. With `tile_scale` (`detect` and uploads:
PHOTO_TILE_SCALE) the detector also searches it over an image pyramid, in overlapping
windows down to the scale it trained at, and keeps one box per head across levels
(`Detector._propose_tiled`); the verifier then looks once at every box. The live stream
sees each camera frame whole, once.

`find_heads_fn(bundle)` is the one factory everything uses (live service, slice,
datasets, uploads, `detect`): the detector when the bundle has one, else the classical
finder (`screwcam.heads`), which stays only as a measured fallback.

This module never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .bundle import Bundle
from .errors import ModelError
from .frames import Box
from .heads import refine_boxes, work_size
from .litert import make_interpreter
from .preprocess import to_gray

DETECTOR_PART = "detector"
DETECTOR_FILE = "detector.tflite"
VERIFIER_FILE = "verifier.tflite"
#: how a verifier's crops are made (2: the classifier's own crops, `verifier_crops`); a
#: verifier of another format is refused
VERIFIER_FORMAT = 2
REGRESSOR_FILE = "regressor.tflite"
#: how a box regressor's crops and outputs are made (1: `regressor_crops`, and per box
#: (dx, dy, log w ratio, log h ratio), `regress`); a regressor of another format is refused
REGRESSOR_FORMAT = 1
REGRESSOR_MARGIN = 0.6
REGRESSOR_LOG_CLIP = 1.2
#: how the outputs are encoded (heat + [offset x, offset y, log w, log h]); a part with
#: another version is refused
DETECTOR_FORMAT = 1
DEFAULT_THRESHOLD = 0.35
DEFAULT_STRIDE = 8
_REEXPORT = "re-export it (`screwcam export-detector DETECTOR_DIR --into BUNDLE`)"

#: for photos (`detect`, uploads): look at an image larger than the network's frame in
#: overlapping windows down to this many input pixels per image pixel; 0.5 is the
#: training scenes' own scale (a 640x480 frame at half size), where a 24 px head is 12
PHOTO_TILE_SCALE = 0.5
#: windows of one pyramid level overlap by this many input pixels, and a finer level
#: keeps heads up to TILE_KEEP input pixels across (so each lies whole in some window);
#: a coarser level leaves heads under TILE_MIN to the next (at twice the scale they are
#: under 2 * TILE_MIN, well inside TILE_KEEP: box sizes differ a little between levels)
TILE_OVERLAP = 64
TILE_KEEP = 48
TILE_MIN = 20
#: heads under this many input pixels across are not found reliably (a 24 px head, the
#: smallest the tests count with a verifier, at the training scenes' half size)
SMALLEST_SEEN = 12

Finder = Callable[[np.ndarray], list[Box]]
_PEAK_KERNEL = np.ones((3, 3), np.uint8)


def letterbox(gray: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, int, int]:
    """`gray` scaled to fit size=(width, height) keeping its aspect, centred on a canvas
    of the image's mean gray. Returns (canvas, scale, x offset, y offset): a point p of
    the image lies at p * scale + offset on the canvas."""
    width, height = size
    h, w = gray.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    small = gray if (nw, nh) == (w, h) else cv2.resize(gray, (nw, nh), interpolation=interp)
    if (nw, nh) == (width, height):
        return small, scale, 0, 0
    ox, oy = (width - nw) // 2, (height - nh) // 2
    fill = int(cv2.mean(small)[0])
    canvas = cv2.copyMakeBorder(
        small, oy, height - nh - oy, ox, width - nw - ox, cv2.BORDER_CONSTANT, value=fill
    )
    return canvas, scale, ox, oy


def decode(
    heat: np.ndarray,
    boxes: np.ndarray,
    *,
    threshold: float,
    stride: int,
    scale: float,
    offset: tuple[int, int],
    frame_size: tuple[int, int],
) -> list[tuple[Box, float]]:
    """Heads (box in frame pixels, score) from the heat map (gh, gw) and box map
    (gh, gw, 4), strongest first. `scale` and `offset` are the letterbox's;
    `frame_size` = (width, height) clips the boxes."""
    peaks = (heat >= threshold) & (heat >= cv2.dilate(heat, _PEAK_KERNEL))
    ys, xs = np.nonzero(peaks)
    if len(ys) == 0:
        return []
    order = np.argsort(-heat[ys, xs])
    ys, xs = ys[order], xs[order]
    reg = boxes[ys, xs].astype(np.float32)
    cx = (xs + reg[:, 0]) * stride
    cy = (ys + reg[:, 1]) * stride
    bw = np.exp(np.clip(reg[:, 2], -3.0, 6.0)) * stride
    bh = np.exp(np.clip(reg[:, 3], -3.0, 6.0)) * stride
    ox, oy = offset
    fw, fh = frame_size
    x0 = np.clip((cx - bw / 2 - ox) / scale, 0, fw)
    y0 = np.clip((cy - bh / 2 - oy) / scale, 0, fh)
    x1 = np.clip((cx + bw / 2 - ox) / scale, 0, fw)
    y1 = np.clip((cy + bh / 2 - oy) / scale, 0, fh)
    # plain Python numbers from here: the loop below touches each peak a few times
    scores = heat[ys, xs].tolist()
    bx, by = np.rint(x0).astype(int).tolist(), np.rint(y0).astype(int).tolist()
    bw_, bh_ = np.rint(x1 - x0).astype(int).tolist(), np.rint(y1 - y0).astype(int).tolist()
    return suppress(
        [
            (Box(bx[i], by[i], bw_[i], bh_[i]), score)
            for i, score in enumerate(scores)
            if bw_[i] >= 2 and bh_[i] >= 2
        ]
    )


def suppress(found: list[tuple[Box, float]]) -> list[tuple[Box, float]]:
    """One head per place: of (box, score) pairs sorted strongest first, each box whose
    centre lies within the core of a stronger kept box (0.35 of its diameter), or which
    overlaps one with IoU > 0.4, is the same head and is dropped."""
    kept: list[tuple[Box, float]] = []
    centres: list[tuple[float, float, float]] = []
    for box, score in found:
        mx, my = box.x + box.w / 2.0, box.y + box.h / 2.0
        if any(
            math.hypot(mx - kx, my - ky) < 0.35 * kr or box.iou(k) > 0.4
            for (kx, ky, kr), (k, _) in zip(centres, kept, strict=True)
        ):
            continue
        kept.append((box, score))
        centres.append((mx, my, max(box.w, box.h)))
    return kept


def _quantize(x: np.ndarray, dtype: np.dtype, scale: float, zero: int) -> np.ndarray:
    """uint8 pixels -> a model input tensor of `dtype` (scale, zero point)."""
    if dtype == np.float32:
        return x.astype(np.float32)
    if dtype == np.int8 and math.isclose(scale, 1.0, rel_tol=1e-6) and zero == -128:
        return (x ^ np.uint8(0x80)).view(np.int8)  # x - 128 without arithmetic
    info = np.iinfo(dtype)
    q = np.rint(x.astype(np.float32) / scale) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


def tile_scale_arg(text: str) -> float:
    """argparse type of a --tile-scale option: a scale in 0.05..2."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number, e.g. 0.5") from None
    if not 0.05 <= value <= 2.0:
        raise argparse.ArgumentTypeError(f"must be in 0.05..2, got {text}")
    return value


def _starts(length: int, window: int, overlap: float) -> list[int]:
    """Start offsets of windows `window` long covering 0..length, neighbours
    overlapping by at least `overlap`, spread evenly."""
    if window >= length:
        return [0]
    n = math.ceil((length - overlap) / (window - overlap))
    n = max(n, 2)
    step = (length - window) / (n - 1)
    return [round(i * step) for i in range(n)]


def pyramid(
    size: tuple[int, int], input_size: tuple[int, int], tile_scale: float
) -> list[tuple[float, int, int, list[int], list[int]]]:
    """The levels an image of size=(width, height) is searched at (`Detector`'s
    windows, for a network input of input_size=(width, height)): the image seen whole,
    then at twice the scale and so on up to `tile_scale` input pixels per image pixel;
    per level (scale, window width, window height, window x starts, window y starts)."""
    w, h = size
    iw, ih = input_size
    levels = [min(iw / w, ih / h)]
    while levels[-1] < tile_scale:
        levels.append(min(2.0 * levels[-1], tile_scale))
    out = []
    for scale in levels:
        ww, wh = min(w, round(iw / scale)), min(h, round(ih / scale))
        overlap = TILE_OVERLAP / scale
        out.append((scale, ww, wh, _starts(w, ww, overlap), _starts(h, wh, overlap)))
    return out


def verifier_crops(gray: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """(N, 28, 28) uint8: the verifier's input, which is the classifier's own crop of each
    box (`preprocess.preprocess_many`). This is VERIFIER_FORMAT 2."""
    from .preprocess import preprocess_many

    return preprocess_many(gray, [b.as_list() for b in boxes])


class _CropNet:
    """An int8 LiteRT network that takes a batch of (N, size, size) uint8 crops and gives
    `width` numbers per crop (a detector's verifier and its box regressor). Not
    thread-safe (its own interpreter)."""

    what = "crop network"
    #: how the error names the entry's `format` (e.g. "verifier crop format")
    format_name = "format"
    #: the entry `format` this screwcam reads
    format = 0

    def __init__(
        self, path: str | Path, entry: dict[str, Any], width: int, num_threads: int = 2
    ) -> None:
        from .preprocess import INPUT_SIZE

        self.path = Path(path)
        fmt = entry.get("format")
        if fmt != self.format:
            raise ModelError(
                f"{self.path}: {self.format_name} {fmt!r}, this screwcam reads format "
                f"{self.format}; {_REEXPORT}"
            )
        if not self.path.is_file():
            raise ModelError(
                f"{self.path}: the detector's {self.what} file is missing; {_REEXPORT}"
            )
        self.size = INPUT_SIZE
        self._interp = make_interpreter(self.path, num_threads=num_threads)
        inputs = self._interp.get_input_details()
        outputs = self._interp.get_output_details()
        shape = [int(v) for v in inputs[0]["shape"]] if len(inputs) == 1 else []
        out_shape = [int(v) for v in outputs[0]["shape"]] if len(outputs) == 1 else []
        if shape[1:] != [self.size, self.size, 1] or out_shape[1:] != [width]:
            raise ModelError(
                f"{self.path}: a {self.what} takes [N, {self.size}, {self.size}, 1] crops and "
                f"gives [N, {width}], this model takes {shape} and gives "
                f"{out_shape or f'{len(outputs)} outputs'}; {_REEXPORT}"
            )
        inp, out = inputs[0], outputs[0]
        self._in_index, self._out_index = int(inp["index"]), int(out["index"])
        self._in_dtype = np.dtype(inp["dtype"])
        self._in_scale, self._in_zero = (float(v) for v in inp["quantization"])
        self._out_dtype = np.dtype(out["dtype"])
        self._out_scale, self._out_zero = (float(v) for v in out["quantization"])
        self._width = width
        self._batch = shape[0]
        self._interp.allocate_tensors()

    def run(self, crops: np.ndarray) -> np.ndarray:
        """(N, width) float32 of (N, size, size) uint8 crops, one invoke()."""
        n = len(crops)
        if n == 0:
            return np.zeros((0, self._width), np.float32)
        if n != self._batch:
            self._interp.resize_tensor_input(self._in_index, [n, self.size, self.size, 1])
            self._interp.allocate_tensors()
            self._batch = n
        x = _quantize(crops, self._in_dtype, self._in_scale, int(self._in_zero))
        self._interp.set_tensor(self._in_index, np.ascontiguousarray(x[..., None]))
        self._interp.invoke()
        raw = self._interp.get_tensor(self._out_index).reshape(n, self._width)
        if self._out_dtype == np.float32:
            return raw.astype(np.float32)
        return (raw.astype(np.float32) - self._out_zero) * self._out_scale


class Verifier(_CropNet):
    """A detector's second stage: P(head) of each candidate box, from its crop at the
    frame's full resolution. Not thread-safe (its own interpreter)."""

    what = "verifier"
    format_name = "verifier crop format"
    format = VERIFIER_FORMAT

    def __init__(self, path: str | Path, entry: dict[str, Any], num_threads: int = 2) -> None:
        super().__init__(path, entry, 1, num_threads)
        #: keep a candidate whose P(head) is at least this
        self.threshold = float(entry["threshold"])
        #: the heat a candidate needs to be verified at all
        self.detector_threshold = float(entry["detector_threshold"])

    def __call__(self, gray: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """P(head) (N,) of each box in the gray frame, one invoke()."""
        return self.predict_crops(verifier_crops(gray, boxes))

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """P(head) (N,) of (N, size, size) uint8 crops made by `verifier_crops`."""
        return self.run(crops)[:, 0]


def regressor_crops(gray: np.ndarray, boxes: list[Box], margin: float) -> np.ndarray:
    """(N, 28, 28) uint8: the box regressor's input, each box's square surroundings with
    `margin` of its side added on every side, made like a classifier crop
    (`preprocess.preprocess_many`). This is REGRESSOR_FORMAT 1."""
    from .preprocess import preprocess_many

    return preprocess_many(gray, [b.as_list() for b in boxes], margin=margin)


def regress(box: Box, t: np.ndarray, frame_size: tuple[int, int]) -> Box:
    """The box a regressor's output t = (dx, dy, log w ratio, log h ratio) makes of `box`
    (the centre moved by dx box widths and dy box heights, the sides scaled by e^t),
    clipped to the frame (width, height)."""
    cx = box.x + box.w / 2.0 + float(t[0]) * box.w
    cy = box.y + box.h / 2.0 + float(t[1]) * box.h
    w = box.w * math.exp(min(REGRESSOR_LOG_CLIP, max(-REGRESSOR_LOG_CLIP, float(t[2]))))
    h = box.h * math.exp(min(REGRESSOR_LOG_CLIP, max(-REGRESSOR_LOG_CLIP, float(t[3]))))
    fw, fh = frame_size
    x0, y0 = max(0, round(cx - w / 2.0)), max(0, round(cy - h / 2.0))
    x1, y1 = min(fw, round(cx + w / 2.0)), min(fh, round(cy + h / 2.0))
    return Box(x0, y0, max(2, x1 - x0), max(2, y1 - y0))


class Regressor(_CropNet):
    """A detector's box regressor: looks at the surroundings of each proposed box and
    moves and resizes it onto the whole head (the heat map sometimes boxes only the
    recess of a head whose face has the surface's tone). Not thread-safe."""

    what = "box regressor"
    format_name = "box regressor format"
    format = REGRESSOR_FORMAT

    def __init__(self, path: str | Path, entry: dict[str, Any], num_threads: int = 2) -> None:
        super().__init__(path, entry, 4, num_threads)
        #: the context crop: the box plus this share of its side on every side
        self.margin = float(entry.get("margin", REGRESSOR_MARGIN))

    def __call__(self, gray: np.ndarray, found: list[tuple[Box, float]]) -> list[tuple[Box, float]]:
        """The (box, score) pairs strongest first, each box moved onto its head, then one
        box per place again (`suppress`: two proposals may land on the same head)."""
        if not found:
            return found
        boxes = [b for b, _ in found]
        t = self.run(regressor_crops(gray, boxes, self.margin))
        h, w = gray.shape[:2]
        return suppress([(regress(b, ti, (w, h)), s) for (b, s), ti in zip(found, t, strict=True)])


class Detector:
    """The head detector of a bundle, interpreter built once. `detect(frame)` returns
    [(Box, score)] strongest first; calling the detector returns the boxes sorted left
    to right, like the classical finder. Not thread-safe: one Detector per thread."""

    def __init__(
        self,
        path: str | Path,
        entry: dict[str, Any] | None = None,
        num_threads: int = 2,
        tile_scale: float | None = None,
    ) -> None:
        entry = dict(entry or {})
        self.path = Path(path)
        #: None: every image is seen whole, letterboxed (the live stream: camera frames
        #: are the network's own frame); a number: larger images are also searched in
        #: windows down to this scale (`_propose_tiled`; PHOTO_TILE_SCALE for photos)
        self.tile_scale = tile_scale
        fmt = entry.get("format", DETECTOR_FORMAT)
        if fmt != DETECTOR_FORMAT:
            raise ModelError(
                f"{self.path}: detector output format {fmt!r}, this screwcam decodes format "
                f"{DETECTOR_FORMAT}; {_REEXPORT}"
            )
        self.threshold = float(entry.get("threshold", DEFAULT_THRESHOLD))
        #: snap each box to the head's outline where one is found (`heads.refine_box`)
        self.refine = bool(entry.get("refine", True))
        self.stride = int(entry.get("stride", DEFAULT_STRIDE))
        self._interp = make_interpreter(self.path, num_threads=num_threads)
        self._interp.allocate_tensors()
        inputs = self._interp.get_input_details()
        outputs = self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 2:
            raise ModelError(
                f"{self.path}: a detector has one input and two outputs (heat, box), this "
                f"model has {len(inputs)} and {len(outputs)}; {_REEXPORT}"
            )
        inp = inputs[0]
        shape = [int(v) for v in inp["shape"]]
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 1:
            raise ModelError(f"{self.path}: detector input shape {shape} is not [1, H, W, 1]")
        self.input_size = (shape[2], shape[1])  # (width, height)
        self._in_index = int(inp["index"])
        self._in_dtype = np.dtype(inp["dtype"])
        in_scale, in_zero = inp["quantization"]
        self._in_scale, self._in_zero = float(in_scale), int(in_zero)
        self._outs: dict[str, tuple[int, float, int, bool]] = {}
        grid = (shape[1] // self.stride, shape[2] // self.stride)
        for det in outputs:
            oshape = [int(v) for v in det["shape"]]
            name = {1: "heat", 4: "box"}.get(oshape[-1])
            if name is None or tuple(oshape[1:3]) != grid or name in self._outs:
                raise ModelError(
                    f"{self.path}: detector output shape {oshape} is not [1, {grid[0]}, "
                    f"{grid[1]}, 1 or 4] (stride {self.stride}); {_REEXPORT}"
                )
            scale, zero = det["quantization"]
            floating = np.dtype(det["dtype"]) == np.float32
            self._outs[name] = (int(det["index"]), float(scale), int(zero), floating)
        ventry = entry.get("verifier")
        #: the second stage (None: the heat map alone decides)
        self.verifier = (
            None
            if not ventry
            else Verifier(self.path.parent / str(ventry.get("file")), ventry, num_threads)
        )
        rentry = entry.get("regressor")
        #: moves each proposed box onto its whole head before the verifier looks (None:
        #: the heat map's boxes as they are)
        self.regressor = (
            None
            if not rentry
            else Regressor(self.path.parent / str(rentry.get("file")), rentry, num_threads)
        )

    def _to_input(self, canvas: np.ndarray) -> np.ndarray:
        x = _quantize(canvas, self._in_dtype, self._in_scale, self._in_zero)
        return x.reshape(1, self.input_size[1], self.input_size[0], 1)

    def _output(self, name: str) -> np.ndarray:
        index, scale, zero, floating = self._outs[name]
        raw = self._interp.get_tensor(index)[0]
        return raw if floating else (raw.astype(np.float32) - zero) * scale

    def raw(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int, int]:
        """(heat (gh, gw), box (gh, gw, 4), scale, x offset, y offset) of one frame."""
        return self._run(to_gray(frame))[:5]

    def _run(
        self, gray: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float, int, int, np.ndarray | None]:
        """raw()'s five and the frame at the outline finder's working size if the
        letterbox made exactly that image on its way (else None), so refining the boxes
        need not scale the frame again."""
        canvas, scale, ox, oy = letterbox(gray, self.input_size)
        self._interp.set_tensor(self._in_index, self._to_input(np.ascontiguousarray(canvas)))
        self._interp.invoke()
        (ww, wh), wscale = work_size(*gray.shape[:2])
        small = canvas[oy : oy + wh, ox : ox + ww] if scale == wscale else None
        return self._output("heat")[:, :, 0], self._output("box"), scale, ox, oy, small

    def detect(
        self,
        frame: np.ndarray,
        threshold: float | None = None,
        verify: bool = True,
        regress: bool = True,
    ) -> list[tuple[Box, float]]:
        """Every head in a BGR or gray frame: [(box in frame pixels, score)], strongest
        first. `threshold` overrides the heat a head needs; with a box regressor (and
        `regress`) each box is moved onto its whole head; with a verifier (and `verify`),
        the candidates from its own `detector_threshold` (or `threshold`) are kept only
        if the verifier accepts them."""
        return self._detect(to_gray(frame), threshold, verify, regress)[0]

    def _detect(
        self, gray: np.ndarray, threshold: float | None, verify: bool, regress: bool = True
    ) -> tuple[list[tuple[Box, float]], np.ndarray | None]:
        """(detect's result, the crops of its boxes if the verifier cut them, else None)."""
        verifier = self.verifier if verify else None
        default = self.threshold if verifier is None else verifier.detector_threshold
        low = default if threshold is None else threshold
        h, w = gray.shape[:2]
        iw, ih = self.input_size
        if self.tile_scale is not None and min(iw / w, ih / h) < self.tile_scale:
            found = self._propose_tiled(gray, low)
        else:
            found = self._propose(gray, low)
        if self.regressor is not None and regress:
            found = self.regressor(gray, found)
        if verifier is None or not found:
            return found, None
        crops = verifier_crops(gray, [b for b, _ in found])
        keep = verifier.predict_crops(crops) >= verifier.threshold
        return [bs for bs, ok in zip(found, keep, strict=True) if ok], crops[keep]

    def _propose(self, gray: np.ndarray, low: float) -> list[tuple[Box, float]]:
        """The heat map's heads of one image seen whole (letterboxed), boxes snapped to
        their outlines, strongest first: the candidates a verifier then looks at."""
        heat, box, scale, ox, oy, small = self._run(gray)
        h, w = gray.shape[:2]
        if self.refine:
            low *= 0.5  # a weaker peak counts if the head's own outline confirms it
        found = decode(
            heat,
            box,
            threshold=low,
            stride=self.stride,
            scale=scale,
            offset=(ox, oy),
            frame_size=(w, h),
        )
        if self.refine and found:
            tight = refine_boxes(gray, [b for b, _ in found], small)
            found = [
                (b, min(1.0, 2.0 * s) if confirmed else s)
                for (b, confirmed), (_, s) in zip(tight, found, strict=True)
            ]
            found = [(b, s) for b, s in found if s >= 2.0 * low]
            found.sort(key=lambda bs: -bs[1])
        return found

    def _propose_tiled(self, gray: np.ndarray, low: float) -> list[tuple[Box, float]]:
        """`_propose` over an image pyramid, for an image larger than the network's
        frame (a photo): the image seen whole, then at twice the scale, and so on up to
        `tile_scale` input pixels per image pixel, each finer level in overlapping
        windows of the network's input size. Each head is taken from a level where it is
        TILE_MIN..TILE_KEEP input pixels across (or larger, seen whole), where its
        outline is sharp enough to box: a level keeps heads up to TILE_KEEP (larger ones
        a coarser level sees well) and leaves those under TILE_MIN to the next finer
        one (the finest keeps them all); and none that touch a window's inner edge (the
        neighbouring window, TILE_OVERLAP further on, holds it whole). Then one head per
        place across all levels (`suppress`)."""
        h, w = gray.shape[:2]
        levels = pyramid((w, h), self.input_size, self.tile_scale or 0.0)
        found: list[tuple[Box, float]] = []
        for level, (scale, ww, wh, xs, ys) in enumerate(levels):
            finest = level == len(levels) - 1
            least = 0.0 if finest else TILE_MIN / scale
            most = math.inf if level == 0 else TILE_KEEP / scale
            edge = 2.0 / scale
            for y in ys:
                for x in xs:
                    window = np.ascontiguousarray(gray[y : y + wh, x : x + ww])
                    for b, score in self._propose(window, low):
                        inner = (
                            (x > 0 and b.x < edge)
                            or (y > 0 and b.y < edge)
                            or (x + ww < w and b.x + b.w > ww - edge)
                            or (y + wh < h and b.y + b.h > wh - edge)
                        )
                        if least <= max(b.w, b.h) <= most and not inner:
                            found.append((Box(b.x + x, b.y + y, b.w, b.h), score))
        found.sort(key=lambda bs: -bs[1])
        return suppress(found)

    def frame_advice(self, width: int, height: int) -> str | None:
        """For a camera or video: what to do when its frames, seen whole, shrink heads
        below what the heat map finds reliably (SMALLEST_SEEN input pixels); None when
        its frames need nothing (up to 640x512, or searched in windows already)."""
        iw, ih = self.input_size
        scale = min(iw / width, ih / height)
        if self.tile_scale is not None or scale >= PHOTO_TILE_SCALE:
            return None
        runs = sum(
            len(xs) * len(ys)
            for *_, xs, ys in pyramid((width, height), self.input_size, PHOTO_TILE_SCALE)
        )
        return (
            f"{width}x{height} frames are shrunk {1 / scale:.1f}x to fit the head detector's "
            f"{iw}x{ih}: heads under about {math.ceil(SMALLEST_SEEN / scale)} px across may "
            f"be missed; set [model] tile_scale = {PHOTO_TILE_SCALE} to also search each "
            f"frame in windows ({runs} detector runs per frame instead of 1), or ask the "
            "camera for smaller frames ([camera] width, height)"
        )

    def __call__(self, frame: np.ndarray) -> list[Box]:
        return self.find_with_crops(frame)[0]

    def find_with_crops(self, frame: np.ndarray) -> tuple[list[Box], np.ndarray | None]:
        """The boxes of `__call__` (left to right) and, when the verifier cut them, their
        classifier crops (N, 28, 28) in the same order, so the caller need not cut them
        again; None otherwise."""
        found, crops = self._detect(to_gray(frame), None, True)
        order = sorted(range(len(found)), key=lambda i: (found[i][0].x, found[i][0].y))
        boxes = [found[i][0] for i in order]
        return boxes, None if crops is None else crops[order]

    def main_head(self, frame: np.ndarray) -> Box | None:
        """The head a single-screw image or training video is about: the largest box
        among the confident ones (ties: the strongest), or None."""
        found = self.detect(frame)
        if not found:
            return None
        best_score = found[0][1]
        sure = [(b, s) for b, s in found if s >= 0.5 * best_score]
        return max(sure, key=lambda bs: (bs[0].w * bs[0].h, bs[1]))[0]


def find_with_crops(find: Finder, gray: np.ndarray) -> tuple[list[Box], np.ndarray | None]:
    """Run any finder: its boxes and, if it cut them already (a detector's verifier
    looks at the classifier's own crops), those crops; else None."""
    both = getattr(find, "find_with_crops", None)
    if both is not None:
        return both(gray)
    return find(gray), None


def load_detector(
    bundle: Bundle, num_threads: int = 2, tile_scale: float | None = None
) -> Detector | None:
    """The bundle's detector part, or None if the bundle has none."""
    path = bundle.part(DETECTOR_PART) if isinstance(bundle, Bundle) else None
    if path is None:
        return None
    return Detector(
        path, bundle.meta.parts[DETECTOR_PART], num_threads=num_threads, tile_scale=tile_scale
    )


def find_heads_fn(
    bundle: Bundle | None,
    num_threads: int = 2,
    verify: bool = True,
    tile_scale: float | None = None,
) -> Finder:
    """The head finder for a bundle: its learned detector if it has one (with its
    verifier, unless `verify` is False; searching images larger than its frame in
    windows down to `tile_scale`, see `Detector`), else the classical finder. Each call
    builds a new detector (one per thread)."""
    detector = None if bundle is None else load_detector(bundle, num_threads, tile_scale)
    if detector is not None:
        if not verify:
            detector.verifier = None  # the heat map alone, at its own threshold
        return detector
    from .heads import find_heads

    return find_heads


def main_head_fn(bundle: Bundle | None, num_threads: int = 2) -> Callable[[np.ndarray], Box | None]:
    """frame -> the one head a training video or single-screw photo is about."""
    detector = None if bundle is None else load_detector(bundle, num_threads)
    if detector is not None:
        return detector.main_head
    from .heads import find_main_head

    return find_main_head


_local = threading.local()


def default_main_head(frame: np.ndarray) -> Box | None:
    """The main head of a frame by the shipped default bundle's finder (its detector),
    for commands without a --model (slice, loading photo datasets). One detector per
    thread, built on first use."""
    fn = getattr(_local, "main_head", None)
    if fn is None:
        from .bundle import read_bundle, shipped_bundle

        fn = _local.main_head = main_head_fn(read_bundle(shipped_bundle()), num_threads=1)
    return fn(frame)
