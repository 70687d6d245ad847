"""Shared helpers for the capture tests: real video files written with OpenCV from
the demo camera (screwcam.render.DemoSource) and single-head renders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from screwcam.classes import CLASSES
from screwcam.frames import Box
from screwcam.render import DemoSource, render_sample

SIZE = (320, 240)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    """Write BGR frames as an mp4v .mp4 (or MJPG .avi) with OpenCV."""
    height, width = frames[0].shape[:2]
    fourcc = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def demo_frames(
    n: int, *, heads: int = 1, seed: int = 0, size: tuple[int, int] = SIZE, start: int = 0
) -> tuple[list[np.ndarray], list[list[Box]]]:
    """n frames of the demo camera (not paced) and the boxes of their heads."""
    source = DemoSource(size=size, heads=heads, seed=seed, realtime=False)
    frames, boxes = [], []
    with source:
        for index in range(start, start + n):
            image, truth = source.render(index)
            frames.append(image)
            boxes.append([t.box for t in truth])
    return frames, boxes


def write_demo_video(
    path: Path,
    n: int = 30,
    *,
    heads: int = 1,
    seed: int = 0,
    fps: float = 30.0,
    start: int = 0,
    size: tuple[int, int] = SIZE,
) -> list[list[Box]]:
    """A real video file of the demo camera; returns the heads' boxes per frame."""
    frames, boxes = demo_frames(n, heads=heads, seed=seed, start=start, size=size)
    write_video(path, frames, fps)
    return boxes


def write_sample_video(
    path: Path, label: int, n: int, *, seed: int = 0, size: int = 160, fps: float = 30.0
) -> list[Box]:
    """A video whose every frame is a fresh single-head render (render_sample)."""
    rng = np.random.default_rng(seed)
    frames, boxes = [], []
    for _ in range(n):
        image, box = render_sample(rng, label, "even", size)
        frames.append(image)
        boxes.append(box)
    write_video(path, frames, fps)
    return boxes


def write_sidecar(video: Path, label: int, **extra: object) -> Path:
    sidecar = video.with_suffix(".json")
    sidecar.write_text(json.dumps({"label": CLASSES[label], **extra}), encoding="utf-8")
    return sidecar
