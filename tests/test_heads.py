"""The head finder against the demo's and the renderer's ground truth (real OpenCV)."""

from __future__ import annotations

import numpy as np
import pytest

from screwcam.classes import NUM_CLASSES
from screwcam.heads import Box, find_heads, find_main_head
from screwcam.render import (
    BACKGROUNDS,
    CONDITIONS,
    DEMO_CONDITIONS,
    DemoSource,
    render_empty,
    render_sample,
)


@pytest.fixture(scope="module")
def demo():
    with DemoSource(seed=0, realtime=False) as source:
        yield source


def _frames_of(source: DemoSource, condition: str, count: int = 4) -> list[int]:
    """`count` frame indices spread evenly over the first stretch of `condition`."""
    seg = int(round(source.SEGMENT_SECONDS * source.fps))
    k = DEMO_CONDITIONS.index(condition)
    return [k * seg + int((j + 0.5) * seg / count) for j in range(count)]


def test_box_geometry():
    a = Box(0, 0, 10, 10)
    assert a.iou(a) == 1.0
    assert a.iou(Box(10, 10, 5, 5)) == 0.0
    assert a.iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert a.center == (5.0, 5.0)
    assert Box(2, 4, 6, 8).scaled(0.5) == Box(1, 2, 3, 4)
    assert Box(1, 2, 3, 4).as_list() == [1, 2, 3, 4]


@pytest.mark.parametrize("condition", DEMO_CONDITIONS)
def test_every_demo_head_is_found_tightly(demo, condition):
    for index in _frames_of(demo, condition):
        assert demo.condition_at(index) == condition
        image, truth = demo.render(index)
        boxes = find_heads(image)
        assert len(boxes) == len(truth), f"frame {index}: {boxes} vs {truth}"
        for b in boxes:
            assert 0 <= b.x and 0 <= b.y and b.x + b.w <= 640 and b.y + b.h <= 480
        for t in truth:
            best = max(t.box.iou(b) for b in boxes)
            assert best >= 0.8, f"frame {index} ({condition}): head {t} best IoU {best:.2f}"


@pytest.mark.parametrize("kind", BACKGROUNDS)
def test_no_heads_on_empty_textured_or_shadowed_surfaces(kind):
    rng = np.random.default_rng(BACKGROUNDS.index(kind))
    for condition in DEMO_CONDITIONS:
        image = render_empty(rng, (640, 480), condition, kind)
        assert find_heads(image) == [], f"{kind} / {condition}"


def test_blank_and_gray_frames():
    assert find_heads(np.full((480, 640, 3), 128, np.uint8)) == []
    assert find_main_head(np.zeros((112, 112), np.uint8)) is None
    with DemoSource(seed=1, realtime=False) as source:
        image, truth = source.render(0)
    gray = image.mean(axis=2).astype(np.uint8)
    assert len(find_heads(gray)) == len(truth)


def test_boxes_come_back_in_source_pixels():
    """A frame twice as large gives boxes twice as large (detection is downscaled)."""
    with DemoSource(size=(640, 480), seed=2, realtime=False) as small_src:
        small, _ = small_src.render(10)
    big = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    for a, b in zip(find_heads(small), find_heads(big), strict=True):
        assert b.iou(a.scaled(2.0)) >= 0.85


def test_find_main_head_on_rendered_samples():
    rng = np.random.default_rng(123)
    hits = dict.fromkeys(CONDITIONS, 0)
    per = 10
    for condition in CONDITIONS:
        for i in range(per):
            image, truth = render_sample(rng, i % NUM_CLASSES, condition)
            box = find_main_head(image)
            hits[condition] += box is not None and box.iou(truth) >= 0.7
    assert hits["even"] >= per - 1 and hits["silhouette"] >= per - 1, hits
    assert sum(hits.values()) >= 0.8 * per * len(CONDITIONS), hits
