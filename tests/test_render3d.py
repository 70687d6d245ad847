"""The second, independent generator (screwcam.render3d) and the real sample photos.

Training-time code: it needs scikit-image (the `[train]` extra) for its photos, so the
module is skipped on the device set."""

import importlib.util

import cv2
import numpy as np
import pytest

if importlib.util.find_spec("skimage") is None:
    pytest.skip("needs scikit-image: pip install 'screwcam[train]'", allow_module_level=True)

from screwcam import photos, render3d  # noqa: E402
from screwcam.render3d import geometry  # noqa: E402


def _gray(img):
    return img.astype(np.float32).mean(axis=2)


def test_same_seed_same_image_and_info():
    a = render3d.render_head(np.random.default_rng(7), 2, size=64)
    b = render3d.render_head(np.random.default_rng(7), 2, size=64)
    assert np.array_equal(a[0], b[0])
    assert a[1] == b[1] and a[2] == b[2]
    c = render3d.render_head(np.random.default_rng(8), 2, size=64)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("label", range(5))
def test_every_style_of_every_class_renders_with_a_box_inside(label):
    rng = np.random.default_rng(label)
    for style in render3d.LABEL_STYLES[label]:
        img, box, info = render3d.render_head(rng, label, size=80, style=style)
        assert img.shape == (80, 80, 3) and img.dtype == np.uint8
        x, y, w, h = box
        assert 0 <= x and 0 <= y and x + w <= 80 and y + h <= 80
        # a head fills ~40-85 % of the side (a little less when seen obliquely)
        assert 0.3 * 80 <= max(w, h) <= 0.9 * 80, (style, box, info)
        assert info["style"] == style and info["label"] == label
        assert info["class_name"] == render3d.CLASS_NAMES[label]


def test_unknown_style_for_a_class_is_refused():
    with pytest.raises(ValueError, match="style"):
        render3d.render_head(np.random.default_rng(0), 3, style="pan")  # hex heads have no pan
    with pytest.raises(TypeError, match="colour"):
        render3d.render_head(np.random.default_rng(0), 1, colour="red")


@pytest.mark.parametrize("finish", render3d.FINISHES)
def test_every_finish_renders(finish):
    img, box, info = render3d.render_head(np.random.default_rng(1), 1, size=64, finish=finish)
    assert info["finish"] == finish and img.std() > 2


@pytest.mark.parametrize("light", render3d.LIGHTS)
def test_every_light_renders(light):
    img, box, info = render3d.render_head(np.random.default_rng(2), 4, size=64, light=light)
    assert info["light"] == light and img.shape == (64, 64, 3)


@pytest.mark.parametrize("background", render3d.BACKGROUNDS)
def test_every_background_renders(background):
    img, box, info = render3d.render_head(
        np.random.default_rng(3), 0, size=64, background=background
    )
    assert info["background"] == background and img.std() > 1


def test_box_matches_the_head_on_a_plain_background():
    """Without effects, on a plain surface (no cast shadows under environment light),
    the image differs from the surface where the head mask says and not beyond it, and
    the box is the bounding box of that mask."""
    rng = np.random.default_rng(11)
    for label in range(5):
        for bg, finish in (("plain_dark", "stainless"), ("plain_light", "black_oxide")):
            img, (x, y, w, h), info = render3d.render_head(
                rng,
                label,
                size=96,
                background=bg,
                finish=finish,
                light="env",
                tilt=0,
                effects=False,
                fill=0.6,
                mask=True,
                neighbors=0,
            )
            gray = _gray(img)
            head = info["mask"] > 0
            near = cv2.dilate(head.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            surface = np.median(gray[~near])
            outside = np.percentile(np.abs(gray[~near] - surface), 99)
            inside = np.percentile(np.abs(gray[head] - surface), 90)
            # the head differs from the surface; beyond 3 px around the head's mask the
            # image is the surface (its texture, a faint occlusion halo at the foot:
            # under a third of the head's contrast; a head drawn 5 px off its mask fails)
            assert inside > 25, (label, bg, inside)
            assert outside < max(25, 0.33 * inside), (label, bg, outside, inside)
            # the box is about fill * size across (a hex head's flats a little less)
            # and is the mask's bounding box
            assert abs(max(w, h) - 0.6 * 96) <= 6, (label, (x, y, w, h))
            assert min(w, h) >= 0.8 * 0.6 * 96, (label, (x, y, w, h))
            my, mx = np.nonzero(info["mask"])
            assert (mx.min(), my.min(), mx.max() - mx.min() + 1, my.max() - my.min() + 1) == (
                x,
                y,
                w,
                h,
            )


def test_tilt_is_a_3d_projection_not_a_2d_warp():
    """At 30°, a flush countersunk head (flat) is foreshortened to cos 30° = 0.87 of its
    width, while a tall socket cap head also shows its side wall, so its outline is
    taller than that: a 2-D warp would squash both alike."""
    rng = np.random.default_rng(5)
    common = {"size": 128, "tilt": 30, "fill": 0.6, "effects": False, "neighbors": 0}
    flat = []
    tall = []
    for _ in range(3):
        _, (_, _, w, h), info = render3d.render_head(rng, 1, style="countersunk", **common)
        flat.append(h / w)
        _, (_, _, w, h), _ = render3d.render_head(rng, 0, style="cap", **common)
        tall.append(h / w)
    assert info["view"] == 30 and info["view_family"] == "oblique"
    assert all(0.8 <= r <= 0.93 for r in flat), flat
    assert all(r >= 1.0 for r in tall), tall
    _, (_, _, w, h), _ = render3d.render_head(rng, 1, style="countersunk", **{**common, "tilt": 0})
    assert 0.95 <= h / w <= 1.05


@pytest.mark.parametrize("polarity", ["dark_on_light", "light_on_dark"])
def test_silhouettes_are_binary(polarity):
    rng = np.random.default_rng(4)
    for label in range(5):
        img, box, info = render3d.render_head(
            rng, label, size=64, silhouette=True, polarity=polarity
        )
        assert set(np.unique(img)) <= {0, 255}
        assert info["silhouette"] == polarity and info["light"] == "silhouette"
        x, y, w, h = box
        head_value = 0 if polarity == "dark_on_light" else 255
        assert (img[0, 0] != head_value).all()  # background corner has the other value
        assert (img[y : y + h, x : x + w] == head_value).mean() > 0.3


def test_recesses_differ_in_shape():
    """The recess shapes are what separates the classes: Pozidriv has ticks at 45°,
    Phillips does not; Torx and the hex socket are not crosses."""
    n = 201
    ys, xs = np.mgrid[-1.5 : 1.5 : n * 1j, -1.5 : 1.5 : n * 1j].astype(np.float32)
    rng = np.random.default_rng(0)
    depth = {}
    ticks = {}
    for name, fn in geometry.RECESSES.items():
        d, t = fn(xs, ys, geometry.recess_params(rng, name))
        depth[name], ticks[name] = d > 0.02, t
    assert ticks["pozidriv"] is not None and ticks["pozidriv"].max() > 0
    assert ticks["phillips"] is None
    on_diag = (np.abs(xs - ys) < 0.05) & (xs > 0.8) & (xs < 1.0)  # outside the opening
    assert ticks["pozidriv"][on_diag].max() > 0
    # a cross reaches far along the axes but not along the diagonals
    for name in ("phillips", "pozidriv"):
        axis = depth[name][n // 2, int(n * (0.5 + 0.8 / 3))]
        diag = depth[name][int(n * (0.5 + 0.6 / 3)), int(n * (0.5 + 0.6 / 3))]
        assert axis and not diag, name
    # torx and hex socket are compact: they fill much of their enclosing circle,
    # a cross does not
    rr = np.hypot(xs, ys)
    filled = {k: v.sum() / (np.pi * rr[v].max() ** 2 * (n / 3.0) ** 2) for k, v in depth.items()}
    compact = min(filled["torx"], filled["hex_socket"])
    assert compact > max(filled["phillips"], filled["pozidriv"]) + 0.1, filled


def test_scene_places_the_requested_heads_and_not_the_distractors():
    rng = np.random.default_rng(21)
    labels = [0, 1, 2, 3, 4]
    img, heads, distractors = render3d.render_scene(
        rng,
        size=(320, 240),
        labels=labels,
        n_distractors=4,
        max_size=60,
        tilt=0,
        return_distractors=True,
    )
    assert img.shape == (240, 320, 3)
    assert sorted(label for _, label, _ in heads) == labels
    for (x, y, w, h), label, info in heads:
        assert 0 <= x and 0 <= y and x + w <= 320 and y + h <= 240
        assert w >= 10 and h >= 10
        assert info["label"] == label and info["generator"] == "render3d"
        if label == 3:
            assert info["recess_box"] is None
        else:
            rx, ry, rw, rh = info["recess_box"]
            assert x <= rx and y <= ry and rx + rw <= x + w and ry + rh <= y + h
    assert len(distractors) >= 1
    head_boxes = [b for b, _, _ in heads]
    for (dx, dy, dw, dh), kind in distractors:
        assert kind in render3d.DISTRACTOR_KINDS
        for x, y, w, h in head_boxes:
            ix = min(x + w, dx + dw) - max(x, dx)
            iy = min(y + h, dy + dh) - max(y, dy)
            if ix > 2 and iy > 2:  # only a washer under the head may share its place
                assert kind == "washer"
                assert dx <= x and dy <= y and x + w <= dx + dw and y + h <= dy + dh
                assert dw > w and dh > h


def test_scene_heads_do_not_overlap_and_span_sizes():
    rng = np.random.default_rng(3)
    sizes = []
    for _ in range(3):
        _, heads = render3d.render_scene(rng, size=(320, 240), n_heads=6, effects=False)
        boxes = [b for b, _, _ in heads]
        for i, (x, y, w, h) in enumerate(boxes):
            sizes.append(max(w, h))
            for x2, y2, w2, h2 in boxes[i + 1 :]:
                # heads are round-ish: touching is fine, overlapping is not (a tall head
                # seen obliquely may lean over its neighbour a little)
                gap = np.hypot(x + w / 2 - x2 - w2 / 2, y + h / 2 - y2 - h2 / 2)
                assert gap >= 0.8 * (max(w, h) + max(w2, h2)) / 2, (boxes, i)
    assert min(sizes) < 40 and max(sizes) > 40


def test_photos_load_offline():
    names = photos.available()
    assert "brick.png" in names and "coins.png" in names
    brick = photos.load_photo("brick.png")
    assert brick.ndim == 3 and brick.dtype == np.uint8 and brick.std() > 5
    assert photos.load_photo("coins.png", gray=True).ndim == 2
    crop = photos.random_crop(np.random.default_rng(0), (50, 30))
    assert crop.shape == (30, 50, 3)
    coins = photos.coin_patches()
    assert len(coins) >= 15  # coins.png shows 24 coins
    for patch, mask in coins:
        assert patch.shape == mask.shape
        assert 0.4 < (mask > 0).mean() < 0.95  # a round coin fills a good part of its box
    with pytest.raises(Exception, match="unknown sample photo"):
        photos.load_photo("nope.png")


def test_pools_hold_families_out():
    rng = np.random.default_rng(9)
    seen = {"finish": set(), "light": set(), "style": set(), "background": set()}
    for i in range(40):
        _, _, info = render3d.render_head(
            rng,
            i % 5,
            size=32,
            finishes=set(render3d.FINISHES) - {"rusty"},
            lights=("side", "dim"),
            styles=("pan", "cap", "hex"),
            backgrounds=("plain_dark", "photo"),
        )
        for key in seen:
            seen[key].add(info[key])
    assert "rusty" not in seen["finish"] and len(seen["finish"]) >= 4
    assert seen["light"] == {"side", "dim"}
    assert seen["style"] <= {"pan", "cap", "hex"}
    assert seen["background"] <= {"plain_dark", "photo"}
    with pytest.raises(ValueError, match="no style"):
        render3d.render_head(rng, 3, styles=("pan",))  # hex heads have no pan style
    with pytest.raises(ValueError, match="unknown finish"):
        render3d.render_head(rng, 1, finishes=("chrome",))


def test_info_names_known_families():
    rng = np.random.default_rng(10)
    for i in range(25):
        _, _, info = render3d.render_head(rng, i % 5, size=32)
        assert info["style"] in render3d.LABEL_STYLES[i % 5]
        assert info["finish"] in render3d.FINISHES
        assert info["light"] in render3d.LIGHTS
        assert info["background"] in render3d.BACKGROUNDS
        assert info["view_family"] == render3d.view_family(info["view"])
        assert 0 <= info["view"] <= render3d.MAX_TILT


def test_empty_scene_has_no_heads_but_may_have_distractors():
    rng = np.random.default_rng(12)
    img, heads, distractors = render3d.render_scene(
        rng, size=(320, 240), n_heads=0, n_distractors=3, return_distractors=True
    )
    assert heads == [] and img.shape == (240, 320, 3)
    assert 1 <= len(distractors) <= 3


def test_tiny_heads_upsampled():
    img, box, info = render3d.render_head(np.random.default_rng(13), 4, size=96, lowres=16)
    assert img.shape == (96, 96, 3) and info["lowres"] == 16
    x, y, w, h = box
    assert 0.3 * 96 <= max(w, h) <= 0.9 * 96


def test_heads_feed_the_one_preprocessing_function():
    """What training will do: the box goes through screwcam.preprocess to 28x28."""
    from screwcam.preprocess import INPUT_SIZE, preprocess

    rng = np.random.default_rng(14)
    for label in range(5):
        img, box, _ = render3d.render_head(rng, label, size=96)
        x = preprocess(img, box)
        assert x.shape[:2] == (INPUT_SIZE, INPUT_SIZE) and x.std() > 0


def test_neighbours_stay_outside_the_head_box():
    rng = np.random.default_rng(15)
    for label in range(5):
        img, (x, y, w, h), info = render3d.render_head(
            rng, label, size=96, neighbors=2, mask=True, tilt=0, fill=0.5
        )
        assert info["neighbors"] == 2
        ys, xs = np.nonzero(info["mask"])
        assert (xs.min(), ys.min()) == (x, y)
        assert abs(max(w, h) - 0.5 * 96) <= 6  # the box is the head's, not a neighbour's


def test_scene_refuses_bad_labels():
    with pytest.raises(ValueError, match="labels must be 0-4"):
        render3d.render_scene(np.random.default_rng(0), size=(64, 64), labels=[1, 7])


def test_recess_box_lies_inside_the_head_box():
    rng = np.random.default_rng(16)
    for label in range(5):
        img, (x, y, w, h), info = render3d.render_head(rng, label, size=96, mask=True)
        if label == 3:  # hex heads have no recess
            assert info["recess_box"] is None and not info["recess_mask"].any()
            continue
        rx, ry, rw, rh = info["recess_box"]
        assert x <= rx and y <= ry and rx + rw <= x + w and ry + rh <= y + h
        assert 0.2 * w < rw < 0.9 * w  # a recess, not the whole head
        assert not (info["recess_mask"] & ~info["mask"]).any()


@pytest.mark.parametrize("kind", render3d.DISTRACTOR_KINDS)
def test_distractor_crops_are_not_heads(kind):
    rng = np.random.default_rng(17)
    img, (x, y, w, h), info = render3d.render_distractor(rng, 64, kind=kind, tilt=0, fill=0.6)
    assert img.shape == (64, 64, 3)
    assert info["label"] is None and info["class_name"] is None and info["style"] == kind
    assert info["recess_box"] is None
    assert 0.6 * 64 * 0.5 <= max(w, h) <= 0.6 * 64 + 5  # rods and cards may lie at 45°
    with pytest.raises(TypeError, match="style"):
        render3d.render_distractor(rng, 64, style="pan")


def test_photos_without_scikit_image_say_what_to_install(monkeypatch):
    from screwcam.errors import DatasetError

    real = photos.importlib.util.find_spec
    monkeypatch.setattr(
        photos.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "skimage" else real(name, *a),
    )
    photos.data_dir.cache_clear()
    try:
        with pytest.raises(DatasetError, match=r"pip install 'screwcam\[train\]'"):
            photos.data_dir()
    finally:
        monkeypatch.undo()
        photos.data_dir.cache_clear()
    assert photos.data_dir().is_dir()
