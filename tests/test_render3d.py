"""The second, independent generator (screwcam.render3d) and the real sample photos."""

import numpy as np
import pytest

from screwcam import photos, render3d
from screwcam.render3d import geometry


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
    """Without effects, on a plain surface, the pixels that differ from the surface are
    inside the box (no cast shadows under environment light), and the box is the
    bounding box of the returned head mask."""
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
            )
            gray = _gray(img)
            near = np.zeros(gray.shape, bool)
            near[max(0, y - 3) : y + h + 3, max(0, x - 3) : x + w + 3] = True
            surface = np.median(gray[~near])
            outside = np.abs(gray[~near] - surface)
            inside = np.abs(gray[y : y + h, x : x + w] - surface)
            # (deterministic seed; the weakest contrast here is ~25 grey levels)
            assert np.percentile(outside, 99) < 20, (label, bg)
            assert np.percentile(inside, 90) > max(15, 3 * np.percentile(outside, 99)), (label, bg)
            # the box is about fill * size across (a hex head's flats a little less)
            # and is the mask's bounding box
            assert abs(max(w, h) - 0.6 * 96) <= 6, (label, (x, y, w, h))
            assert min(w, h) >= 0.8 * 0.6 * 96, (label, (x, y, w, h))
            ys, xs = np.nonzero(info["mask"])
            assert (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) == (
                x,
                y,
                w,
                h,
            )


def test_tilt_foreshortens_the_head():
    rng = np.random.default_rng(5)
    _, (_, _, w0, h0), _ = render3d.render_head(
        rng, 4, size=96, style="button", tilt=0, fill=0.7, effects=False
    )
    _, (_, _, w1, h1), info = render3d.render_head(
        rng, 4, size=96, style="button", tilt=30, fill=0.7, effects=False
    )
    assert info["view"] == 30 and info["view_family"] == "oblique"
    assert h1 < h0 * 0.97 or w1 != w0  # real projection changes the outline


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
    assert len(distractors) >= 1
    head_boxes = [b for b, _, _ in heads]
    for (dx, dy, dw, dh), kind in distractors:
        assert kind in render3d.DISTRACTORS + ("photo_coin",)
        for x, y, w, h in head_boxes:  # distractors never sit on a head
            ix = min(x + w, dx + dw) - max(x, dx)
            iy = min(y + h, dy + dh) - max(y, dy)
            assert ix <= 2 or iy <= 2


def test_scene_heads_do_not_overlap_and_span_sizes():
    rng = np.random.default_rng(3)
    sizes = []
    for _ in range(3):
        _, heads = render3d.render_scene(rng, size=(320, 240), n_heads=6, effects=False)
        boxes = [b for b, _, _ in heads]
        for i, (x, y, w, h) in enumerate(boxes):
            sizes.append(max(w, h))
            for x2, y2, w2, h2 in boxes[i + 1 :]:
                ix = min(x + w, x2 + w2) - max(x, x2)
                iy = min(y + h, y2 + h2) - max(y, y2)
                assert min(ix, iy) <= max(3, 0.2 * min(w, h, w2, h2))
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
