"""One frame's analysis: find the heads, cut them with the one preprocessing, classify
all crops in one call, and apply the confidence threshold."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from screwcam.classes import ENGLISH
from screwcam.detector import find_heads_fn, find_with_crops
from screwcam.frames import Box
from screwcam.preprocess import preprocess_many, to_gray

from .results import UNKNOWN, Head

log = logging.getLogger(__name__)


def _detector_file(bundle: object) -> object:
    """What identifies a bundle's detector: its file's path and size, or None."""
    part = getattr(bundle, "part", None)
    path = part("detector") if callable(part) else None
    return None if path is None else (str(path), path.stat().st_size)


class FinderOnFirstUse:
    """A bundle's head finder, built on its first call (callers hold the finder lock)."""

    def __init__(
        self, bundle: object, threads: int, verify: bool = True, tile_scale: float | None = None
    ) -> None:
        self._bundle = bundle
        self._threads = threads
        self._verify = verify
        self._tile_scale = tile_scale
        self._find: Callable[[np.ndarray], list[Box]] | None = None

    @property
    def built(self) -> bool:
        return self._find is not None

    def __call__(self, gray: np.ndarray) -> list[Box]:
        return self.find_with_crops(gray)[0]

    def find_with_crops(self, gray: np.ndarray) -> tuple[list[Box], np.ndarray | None]:
        if self._find is None:
            self._find = find_heads_fn(self._bundle, self._threads, self._verify, self._tile_scale)
        return find_with_crops(self._find, gray)


class ClassifierLike(Protocol):
    def classify(self, batch: np.ndarray) -> np.ndarray: ...


class Analyzer:
    """find heads -> preprocess_many -> one classifier call -> threshold.

    The heads are found by `find` (frame -> boxes); by default the learned detector
    of the classifier's bundle (its own interpreter, `find_threads` threads; with its
    verifier unless `verify` is False), or the classical finder for a bundle without
    one (`screwcam.detector.find_heads_fn`). A finder that cut the classifier's crops
    already (the verifier does) hands them on, so each head is cut once.

    A LiteRT interpreter is not thread-safe: every classifier call holds this
    analyzer's lock, every finder call its finder lock (uploads may come two at a
    time). The pipeline and the upload endpoint use separate analyzers (separate
    interpreters), so an upload never makes the pipeline wait.

    `lazy=True` builds the bundle's finder on the first frame analyzed, not now: an
    analyzer that may never be used (the one for uploads) holds no detector
    interpreter until it is (pass it a `LazyClassifier` too).

    `tile_scale` (photos: `detect`, uploads) also searches an image larger than the
    detector's frame in overlapping windows, so that a head small against a large photo
    is seen at the scale the detector learned (`screwcam.detector.Detector`); the live
    stream leaves it None: a camera frame is seen whole, once. When its frames are so
    large that heads shrink below what the detector finds reliably, `advice` says what
    to do (logged once per frame size; /healthz shows it).
    """

    def __init__(
        self,
        classifier: ClassifierLike,
        confidence_threshold: float,
        labels: Sequence[str] | None = None,
        find: Callable[[np.ndarray], list[Box]] | None = None,
        find_threads: int = 2,
        lazy: bool = False,
        verify: bool = True,
        tile_scale: float | None = None,
    ) -> None:
        self.classifier = classifier
        self.threshold = float(confidence_threshold)
        bundle = getattr(classifier, "bundle", None)
        self.labels = tuple(labels or getattr(bundle, "labels", None) or ())
        if not self.labels:
            raise ValueError("the classifier's bundle names no labels; pass labels=")
        self._lazy = lazy
        self._find_threads = find_threads
        self._verify = verify
        self._tile_scale = tile_scale
        self.find = find if find is not None else self._finder(bundle)
        # a finder made from the bundle follows the bundle when the classifier is swapped
        self._own_find = find is None
        self._find_from = _detector_file(bundle)
        self._lock = threading.Lock()
        # concurrent uploads share this analyzer: its finder runs one frame at a time
        self._find_lock = threading.Lock()
        self._frame_size: tuple[int, int] | None = None
        #: what to change when frames of this size are too large for the detector
        self.advice: str | None = None

    def set_classifier(
        self, classifier: ClassifierLike, labels: Sequence[str] | None = None
    ) -> ClassifierLike:
        """Swap in another classifier (a model loaded while the service runs, an adapted
        one from the Teach panel) between two frames: waits for a classifier call in
        progress, and the next frame uses the new one. Returns the one it replaced."""
        bundle = getattr(classifier, "bundle", None)
        new_labels = tuple(labels or getattr(bundle, "labels", None) or ())
        if not new_labels:
            raise ValueError("the classifier's bundle names no labels; pass labels=")
        new_find, source = self.find, self._find_from
        if self._own_find and _detector_file(bundle) != self._find_from:
            # the new bundle brings another detector (or none): built before the swap
            new_find, source = self._finder(bundle), _detector_file(bundle)
        with self._lock:
            old, self.classifier = self.classifier, classifier
            self.labels = new_labels
            if new_find is not self.find:
                self._frame_size = None  # its own advice on the next frame
            self.find, self._find_from = new_find, source
        return old

    def _finder(self, bundle: object) -> Callable[[np.ndarray], list[Box]]:
        if self._lazy:
            return FinderOnFirstUse(bundle, self._find_threads, self._verify, self._tile_scale)
        return find_heads_fn(bundle, self._find_threads, self._verify, self._tile_scale)

    def _check_frame_size(self, width: int, height: int) -> None:
        """On the first frame and whenever the size changes: the finder's advice for
        frames this large (a detector's `frame_advice`), logged once."""
        self._frame_size = (width, height)
        advise = getattr(self.find, "frame_advice", None)
        self.advice = advise(width, height) if callable(advise) else None
        if self.advice:
            log.warning("%s", self.advice)

    def analyze(
        self, image: np.ndarray, stages: dict[str, float] | None = None
    ) -> tuple[list[Head], float]:
        """Heads in a BGR (or gray) image, and the seconds the classifier took.
        If `stages` is given, the seconds of each step are stored in it."""
        t0 = time.perf_counter()
        gray = to_gray(image)  # once per frame: both the finder and the crops use it
        t1 = time.perf_counter()
        with self._find_lock:  # a detector is a LiteRT interpreter too
            boxes, batch = find_with_crops(self.find, gray)
            if gray.shape[1::-1] != self._frame_size:
                self._check_frame_size(gray.shape[1], gray.shape[0])
        t2 = time.perf_counter()
        if batch is None and boxes:  # the verifier cut none: cut them now
            batch = preprocess_many(gray, [b.as_list() for b in boxes])
        if not boxes:
            batch = None
        t3 = time.perf_counter()
        inference_s = 0.0
        labels = self.labels
        if batch is not None:
            with self._lock:  # the classifier and its labels, swapped together
                labels = self.labels
                t_call = time.perf_counter()
                probs = np.asarray(self.classifier.classify(batch))
                inference_s = time.perf_counter() - t_call
        if stages is not None:
            stages.update(gray=t1 - t0, find_heads=t2 - t1, crop=t3 - t2, classify=inference_s)
        if batch is None:
            return [], 0.0
        if probs.shape != (len(boxes), len(labels)):
            raise RuntimeError(
                f"classifier returned shape {probs.shape} for {len(boxes)} crops and "
                f"{len(labels)} labels"
            )
        heads = []
        for box, row in zip(boxes, probs, strict=True):
            best = int(np.argmax(row))
            conf = float(row[best])
            name = labels[best]
            if conf >= self.threshold:
                heads.append(Head(box, name, ENGLISH.get(name, name), conf, name))
            else:
                heads.append(Head(box, UNKNOWN, UNKNOWN, conf, name))
        return heads, inference_s
