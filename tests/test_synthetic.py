"""The synthetic renderer and the demo camera: real OpenCV rendering, no mocks."""

from __future__ import annotations

import numpy as np
import pytest

from screwcam.classes import NUM_CLASSES
from screwcam.errors import CameraError
from screwcam.render import CONDITIONS, DEMO_CONDITIONS, DemoSource, render_sample


@pytest.fixture(scope="module")
def demo():
    with DemoSource(seed=0, realtime=False) as source:
        yield source


def test_demo_frames_carry_all_five_types_inside_the_frame(demo):
    frame = demo.read()
    assert frame.image.shape == (480, 640, 3) and frame.image.dtype == np.uint8
    assert frame.index == 0
    labels = sorted(t.label for t in frame.truth)
    assert labels == list(range(NUM_CLASSES))
    for t in frame.truth:
        b = t.box
        assert 0 <= b.x and 0 <= b.y and b.x + b.w <= 640 and b.y + b.h <= 480
        assert 30 <= b.w <= 200 and 30 <= b.h <= 200


def test_demo_heads_do_not_overlap_and_move(demo):
    first = {t.label: t.box for t in demo.render(0)[1]}
    later = {t.label: t.box for t in demo.render(150)[1]}
    boxes = list(first.values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a.iou(b) == 0.0
    assert any(first[k] != later[k] for k in first)


def test_demo_index_counts_and_is_deterministic():
    with DemoSource(seed=3, realtime=False) as a, DemoSource(seed=3, realtime=False) as b:
        frames_a = [a.read() for _ in range(3)]
        frames_b = [b.read() for _ in range(3)]
    assert [f.index for f in frames_a] == [0, 1, 2]
    for fa, fb in zip(frames_a, frames_b, strict=True):
        assert np.array_equal(fa.image, fb.image)
        assert fa.truth == fb.truth
    with DemoSource(seed=4, realtime=False) as c:
        assert not np.array_equal(c.read().image, frames_a[0].image)


def test_demo_lighting_cycles_through_all_conditions(demo):
    seen = [demo.condition_at(i) for i in range(0, 30 * 15 * 2, 15)]
    assert set(seen) == set(DEMO_CONDITIONS)
    seg = int(demo.SEGMENT_SECONDS * demo.fps)
    means = {
        demo.condition_at(k * seg + seg // 2): demo.render(k * seg + seg // 2)[0].mean()
        for k in range(len(DEMO_CONDITIONS))
    }
    assert means["dim"] < 0.5 * means["even"] < means["overexposed"]


def test_demo_read_before_open_is_a_camera_error():
    with pytest.raises(CameraError, match="open"):
        DemoSource(realtime=False).read()


@pytest.mark.parametrize("condition", CONDITIONS)
def test_render_sample_has_one_head_of_the_right_size(condition):
    rng = np.random.default_rng(7)
    for label in range(NUM_CLASSES):
        image, box = render_sample(rng, label, condition, size=112)
        assert image.shape == (112, 112, 3) and image.dtype == np.uint8
        assert 0.4 * 112 <= max(box.w, box.h) <= 0.95 * 112
        assert 0 <= box.x and 0 <= box.y and box.x + box.w <= 112 and box.y + box.h <= 112
        # the head has structure (relative contrast, so dim images count too)
        inside = image[box.y : box.y + box.h, box.x : box.x + box.w].astype(float)
        assert inside.std() > 0.1 * (inside.mean() + 1.0)


def test_render_sample_is_reproducible_and_varies():
    a, box_a = render_sample(np.random.default_rng(11), 2, "even")
    b, box_b = render_sample(np.random.default_rng(11), 2, "even")
    c, _ = render_sample(np.random.default_rng(12), 2, "even")
    assert np.array_equal(a, b) and box_a == box_b
    assert not np.array_equal(a, c)


def test_silhouettes_are_binary():
    rng = np.random.default_rng(3)
    for label in range(NUM_CLASSES):
        image, _ = render_sample(rng, label, "silhouette")
        assert set(np.unique(image)) <= {0, 255}


def test_unknown_condition_is_refused():
    with pytest.raises(ValueError, match="condition"):
        render_sample(np.random.default_rng(0), 0, "foggy")


def test_demo_memory_savers_give_numpys_own_numbers():
    """The demo draws its noise in bands and takes its exposure percentile from a
    histogram (to save memory); both must be exactly what the plain numpy calls give."""
    from screwcam.render.demo import _percentile_u8, _sensor_noise

    pos, neg = _sensor_noise(np.random.default_rng(7), 100, 90)
    noise = np.random.default_rng(7).normal(0.0, 2.5, (100, 90, 3))
    assert np.array_equal(pos, np.clip(noise, 0, 255).astype(np.uint8))
    assert np.array_equal(neg, np.clip(-noise, 0, 255).astype(np.uint8))
    rng = np.random.default_rng(0)
    for _ in range(200):
        lo, hi = sorted(rng.integers(0, 256, 2))
        gray = rng.integers(lo, hi + 1, size=tuple(rng.integers(1, 40, 2)), dtype=np.uint8)
        for q in (1, 10, 33.3, 50, 90, 99):
            assert _percentile_u8(gray, q) == float(np.percentile(gray, q)), (gray.shape, q)


def test_demo_heads_keep_a_small_cache_and_no_sprite(demo):
    """A head's cache of lit paint and shadow maps stays small however long the demo
    runs, and its (S, S, 4) float sprite is not kept."""
    from screwcam.render.scene import Placed

    for _ in range(300):
        demo.read()
    placed = [h.placed for h in demo._heads]
    assert all(p.sprite is None for p in placed)
    assert all(0 < len(p.cache) <= Placed.CACHE_SIZE for p in placed)


def test_conveyor_keeps_maps_only_for_heads_in_view_and_rebuilds_them_exactly(monkeypatch):
    """A conveyor head's lighting maps exist while it is in view; made again when it
    comes into view, they are exactly the ones drawn at open()."""
    import screwcam.render.conveyor as conveyor

    drawn = []
    real = conveyor.make_placed

    def recording(*args, **kwargs):
        drawn.append(real(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(conveyor, "make_placed", recording)
    with conveyor.ConveyorSource(realtime=False, seed=3, heads=15) as source:
        at_open = list(drawn)
        assert len(at_open) == 15
        checked, most_in_view = set(), 0
        for _ in range(source.pass_frames):
            source.read()
            in_view = [i for i, h in enumerate(source._belt) if h.placed is not None]
            most_in_view = max(most_in_view, len(in_view))
            for i in set(in_view) - checked:
                now, then = source._belt[i].placed, at_open[i]
                for name in ("alpha", "normals", "albedo", "sky", "contact_keep", "shadow"):
                    assert np.array_equal(getattr(now, name), getattr(then, name)), (i, name)
                checked.add(i)
    assert checked == set(range(15))
    assert 0 < most_in_view < 15
