"""The sdf generator (`screwcam.render_sdf`): every class renders at several sizes with
its box on the head and its families named, a seed gives the same image, the drive
recess is really cut (and differs by class), and `screwcam synth --generator sdf`
writes a dataset with the families in its manifest."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from screwcam import render_sdf
from screwcam.cli import main
from screwcam.render.families import families_of, family_values
from screwcam.render_sdf.geometry import draw_head

needs_photos = pytest.mark.skipif(
    importlib.util.find_spec("skimage") is None,
    reason="needs scikit-image's photos: pip install 'screwcam[train]'",
)
NO_PHOTO = {"bg": "wood"}  # families that need no scikit-image


@pytest.mark.parametrize("size", [28, 64, 112])
@pytest.mark.parametrize("label", range(5))
def test_every_class_renders_with_its_box_and_families(label, size):
    rng = np.random.default_rng([label, size])
    for _ in range(3):
        image, box, info = render_sdf.render_head(rng, label, size=size, **NO_PHOTO)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        assert 0 <= box.x and 0 <= box.y and box.x + box.w <= size and box.y + box.h <= size
        assert box.w >= size * 0.15 and box.h >= size * 0.15  # the whole head, not a speck
        assert info["style"] in render_sdf.LABEL_STYLES[label]
        assert info["finish"] in render_sdf.FINISHES
        assert info["light"] in render_sdf.LIGHTS
        assert info["view"] in render_sdf.VIEWS
        assert info["bg"] == "wood"
        assert image.std() > 2.0  # not a blank picture


def test_the_head_is_inside_its_box_and_differs_from_the_ground():
    rng = np.random.default_rng(5)
    image, box, _ = render_sdf.render_head(
        rng, 0, 96, style="pan", finish="painted", light="soft", bg="flat", view="top"
    )
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(float)
    inside = gray[box.y : box.y + box.h, box.x : box.x + box.w]
    ring = np.concatenate([gray[:4].ravel(), gray[-4:].ravel(), gray[:, :4].ravel()])
    assert abs(inside.mean() - ring.mean()) > 3 or inside.std() > 2 * ring.std()


def test_same_seed_same_image_other_seed_other_image():
    a = render_sdf.render_head(np.random.default_rng(11), 4, 64, **NO_PHOTO)
    b = render_sdf.render_head(np.random.default_rng(11), 4, 64, **NO_PHOTO)
    c = render_sdf.render_head(np.random.default_rng(12), 4, 64, **NO_PHOTO)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])


def _recess_mask(label: int, style: str, seed: int = 0) -> np.ndarray:
    """Which points of a 41x41 grid 0.08 head radii under the top face, within 0.75
    head radii of the axis, are air (the recess cut into the head), with the recess
    turned to angle 0."""
    head = draw_head(np.random.default_rng(seed), label, style)
    if label != 3:
        head.params["angle"] = 0.0
        head.params["wear"] = 0.0
    s = np.linspace(-0.8, 0.8, 41)
    x, y = np.meshgrid(s, s)
    z = np.full_like(x, head.height - 0.08)
    air = head.sdf(x.ravel(), y.ravel(), z.ravel()).reshape(x.shape) > 0
    return air & (np.hypot(x, y) < 0.75)


def test_the_recess_is_cut_and_its_shape_depends_on_the_class():
    masks = {label: _recess_mask(label, "cheese" if label != 3 else "hex") for label in range(5)}
    assert masks[3].sum() == 0  # a hex head has no recess
    for label in (0, 1, 2, 4):
        assert masks[label][20, 20], f"class {label}: the centre must be open"
        assert 0.03 < masks[label].mean() < 0.6
    for a in (0, 1, 2, 4):
        for b in (0, 1, 2, 4):
            if a < b:
                assert (masks[a] != masks[b]).mean() > 0.02, (a, b)
    # a cross is open along its arms and closed on the diagonals; a hexagon is convex
    assert masks[1][20, 33] and not masks[1][33, 33]
    assert masks[2][20, 33] and not masks[2][36, 36]


def test_pozidriv_has_ticks_at_45_degrees_and_phillips_has_none():
    poz = draw_head(np.random.default_rng(2), 2, "cheese")
    phi = draw_head(np.random.default_rng(2), 1, "cheese")
    for head in (poz, phi):
        head.params["angle"] = 0.0
        head.params["wear"] = 0.0
    poz.params["ticks"] = (0.5, 0.7, 0.035, 0.05)  # a clear set (draws may be faint or none)
    t0, t1, _, _ = poz.params["ticks"]
    r = (t0 + t1) / 2.0 / np.sqrt(2.0)  # on the diagonal, in the tick groove
    for head, open_ in ((poz, True), (phi, False)):  # just under the domed surface
        z = head.top_at(np.array([r * np.sqrt(2.0)])) - 0.01
        assert (head.sdf(np.array([r]), np.array([r]), z)[0] > 0) == open_


def test_pozidriv_ticks_are_sometimes_clear_sometimes_faint_sometimes_gone():
    """Worn or painted Pozidriv heads lose their ticks: the recess must carry the class."""
    ticks = [draw_head(np.random.default_rng(s), 2, "pan").params["ticks"] for s in range(200)]
    depths = [t[3] for t in ticks if t is not None]
    gone = sum(t is None for t in ticks)
    assert 30 < gone < 90
    assert min(depths) < 0.02 and max(depths) > 0.05
    head = draw_head(np.random.default_rng(ticks.index(None)), 2, "pan")
    head.params["wear"] = 0.0
    t0 = head.params["size"] * 0.85
    x = np.array([t0 / np.sqrt(2.0)])  # on the diagonal, where a tick would be
    assert head.sdf(x, x, head.top_at(np.array([t0])) - 0.01)[0] < 0  # solid metal


def test_different_labels_differ_in_the_recess_region():
    """Same seed and families, only the class changes: the crops' centres differ."""
    crops = []
    for label in range(5):
        rng = np.random.default_rng(21)
        style = "hex" if label == 3 else "pan"
        image, box, _ = render_sdf.render_head(
            rng, label, 96, style=style, finish="painted", light="soft", bg="flat", view="top"
        )
        cx, cy = box.x + box.w // 2, box.y + box.h // 2
        q = max(box.w, box.h) // 4
        centre = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[cy - q : cy + q, cx - q : cx + q]
        crops.append(cv2.resize(centre, (16, 16), interpolation=cv2.INTER_AREA))
    for a in range(5):
        for b in range(a + 1, 5):
            assert np.abs(crops[a].astype(float) - crops[b].astype(float)).mean() > 4, (a, b)


def test_bad_arguments_say_what_is_wrong():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="label must be 0..4"):
        render_sdf.render_head(rng, 7)
    with pytest.raises(ValueError, match="does not fit label 3"):
        render_sdf.render_head(rng, 3, style="pan")
    with pytest.raises(ValueError, match="unknown finish"):
        render_sdf.render_head(rng, 1, finish="gold")


def test_a_photo_surface_without_photos_is_an_error_not_another_surface(monkeypatch):
    from screwcam.errors import DatasetError

    monkeypatch.setattr(render_sdf, "_photos", lambda: ())  # scikit-image without its photos
    with pytest.raises(DatasetError, match="--exclude bg=photo"):
        render_sdf.render_head(np.random.default_rng(0), 1, 64, bg="photo")
    image, _, info = render_sdf.render_head(np.random.default_rng(0), 1, 64, bg="wood")
    assert info["bg"] == "wood" and image.shape == (64, 64, 3)


def test_the_generator_is_registered_and_the_mixes_are_unchanged():
    from screwcam.capture.synth_dataset import MIXES

    assert MIXES == {"mix": ("render2d", "render3d"), "all": ("classic", "render2d", "render3d")}
    values = family_values("sdf", 3)
    assert values["style"] == render_sdf.HEX_STYLES
    assert set(values) == {"style", "finish", "light", "bg", "view"}


@needs_photos
def test_synth_writes_an_sdf_dataset(tmp_path: Path, capsys):
    out = tmp_path / "sdf"
    args = ["synth", "--out", str(out), "--per-class", "3", "--seed", "4", "--jobs", "1"]
    assert main([*args, "--generator", "sdf", "--test-fraction", "1"]) == 0
    x = np.load(out / "X_test.npy")
    y = np.load(out / "y_test.npy")
    assert x.shape == (15, 28, 28) and x.dtype == np.uint8
    assert sorted(np.bincount(y).tolist()) == [3] * 5
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 15
    for row in rows:
        fam = families_of(row["condition"])
        assert fam["gen"] == "sdf"
        assert set(fam) == {"gen", "style", "finish", "light", "bg", "view"}
    # a family filter is honoured
    out2 = tmp_path / "rusty"
    assert (
        main([*args[:2], str(out2), *args[3:], "--generator", "sdf", "--only", "finish=rusty"]) == 0
    )
    with open(out2 / "manifest.csv", newline="", encoding="utf-8") as fh:
        assert all("finish=rusty" in r["condition"] for r in csv.DictReader(fh))


@pytest.mark.parametrize("diameter", [8, 24, 60, 180])
def test_a_layer_head_has_the_asked_size_its_coverage_and_its_shadow(diameter):
    # render_layer gives the detector's "sdf" scenes a head to lay onto their own
    # surface: the box's longer side is the diameter, coverage is 0..1 and full inside
    # the head, the radiance is premultiplied (nothing outside the head), and a low
    # light casts a shadow (the ground gets less light next to the head)
    layer = render_sdf.render_layer(np.random.default_rng(diameter), 1, diameter, light="grazing")
    b = layer.box
    assert abs(max(b.w, b.h) - diameter) <= max(2, 0.05 * diameter)
    side = layer.alpha.shape[0]
    assert layer.radiance.shape == layer.shadow.shape == (side, side)
    assert b.x >= 0 and b.y >= 0 and b.x + b.w <= side and b.y + b.h <= side
    assert 0.0 <= layer.alpha.min() and layer.alpha.max() <= 1.0
    assert layer.alpha[b.y : b.y + b.h, b.x : b.x + b.w].mean() > 0.6  # a disc fills 0.79
    assert np.all(layer.radiance[layer.alpha == 0] == 0)
    outside = layer.alpha < 0.01
    assert layer.shadow[outside].min() < 0.8  # somewhere on the ground: the cast shadow
    assert np.median(layer.shadow[outside]) > 0.8  # most of the ground is lit
    assert layer.info["generator"] == "sdf" and layer.info["light"] == "grazing"


def test_a_layer_refuses_what_it_cannot_draw():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="diameter"):
        render_sdf.render_layer(rng, 1, 2)
    with pytest.raises(ValueError, match="light"):
        render_sdf.render_layer(rng, 1, 30, light="dim")  # the scene dims its heads
    with pytest.raises(ValueError, match="view"):
        render_sdf.render_layer(rng, 1, 30, view="tiny")  # a tiny head is a small diameter
