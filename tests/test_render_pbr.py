"""The pbr generator (`screwcam.render_pbr`, Mitsuba 3): every class renders at several
sizes with its box on the whole head and its families named, a seed gives the same image,
every family value renders, bad values are refused by name, the classes really differ,
a missing Mitsuba is one clear error, and `screwcam synth --generator pbr` writes a
dataset with the families in its manifest."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from screwcam.classes import CLASSES
from screwcam.cli import main
from screwcam.preprocess import preprocess
from screwcam.render.families import GENERATORS, families_of, family_values, render_one

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mitsuba") is None or importlib.util.find_spec("skimage") is None,
    reason="needs Mitsuba 3 and scikit-image's photos: pip install 'screwcam[train]'",
)

from screwcam import render_pbr  # noqa: E402  (importing it never imports Mitsuba)
from screwcam.render_pbr import geometry  # noqa: E402

PLAIN = {"finish": "painted", "light": "dome", "bg": "flat", "view": "top"}


@pytest.mark.parametrize("size", [28, 64, 112])
def test_every_class_renders_with_its_box_and_families(size):
    for label in range(5):
        rng = np.random.default_rng([label, size])
        image, box, info = render_pbr.render_head(rng, label, size=size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        assert 0 <= box.x and 0 <= box.y and box.x + box.w <= size and box.y + box.h <= size
        # the head fills 40-75 % of the frame (a little more or less through perspective)
        assert 0.3 * size <= max(box.w, box.h) <= 0.9 * size, (label, box)
        assert info["style"] in render_pbr.LABEL_STYLES[label]
        assert info["finish"] in render_pbr.FINISHES and info["light"] in render_pbr.LIGHTS
        assert info["bg"] in render_pbr.BACKGROUNDS and info["view"] in render_pbr.VIEWS
        assert image.std() > 2.0  # not a blank picture


@pytest.mark.parametrize("label", [1, 3])
def test_the_box_covers_the_head_and_nothing_but_the_head(label):
    """On a flat surface under a dome light, the pixels that differ from the surface lie in
    the box, and they reach across most of it."""
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        image, box, _ = render_pbr.render_head(rng, label, 96, **PLAIN)
        gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (0, 0), 1.0)
        border = np.concatenate([gray[:3].ravel(), gray[-3:].ravel(), gray[:, :3].ravel()])
        ground = float(np.median(border))
        differs = np.abs(gray.astype(float) - ground) > max(25.0, 4 * float(border.std()))
        ys, xs = np.nonzero(differs)
        assert len(xs) > 50, "the head should stand out from a flat surface"
        pad = 3
        inside = (
            (xs >= box.x - pad)
            & (xs < box.x + box.w + pad)
            & (ys >= box.y - pad)
            & (ys < box.y + box.h + pad)
        )
        assert inside.mean() > 0.95, (seed, box)
        assert xs.max() - xs.min() >= 0.7 * box.w and ys.max() - ys.min() >= 0.7 * box.h


def test_same_seed_same_image_other_seed_other_image():
    a = render_pbr.render_head(np.random.default_rng(11), 4, 64)
    b = render_pbr.render_head(np.random.default_rng(11), 4, 64)
    c = render_pbr.render_head(np.random.default_rng(12), 4, 64)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])


def test_every_family_value_renders():
    rng = np.random.default_rng(7)
    for label in range(5):
        for style in render_pbr.LABEL_STYLES[label]:
            _, _, info = render_pbr.render_head(rng, label, 48, style=style)
            assert info["style"] == style
    for key, values in (
        ("finish", render_pbr.FINISHES),
        ("light", render_pbr.LIGHTS),
        ("bg", render_pbr.BACKGROUNDS),
        ("view", render_pbr.VIEWS),
    ):
        for k, value in enumerate(values):
            image, box, info = render_pbr.render_head(rng, k % 5, 48, **{key: value})
            assert info[key] == value and image.shape == (48, 48, 3) and box.w >= 10


def test_bad_family_values_are_refused_by_name():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown finish 'chrome'; choose one of zinc"):
        render_pbr.render_head(rng, 1, 64, finish="chrome")
    with pytest.raises(ValueError, match="unknown style 'pan'; choose one of hex, flange"):
        render_pbr.render_head(rng, 3, 64, style="pan")  # a hex head has no pan style
    with pytest.raises(ValueError, match="unknown view"):
        render_pbr.render_head(rng, 0, 64, view="sideways")
    with pytest.raises(ValueError, match="labels are 0..4"):
        render_pbr.render_head(rng, 5, 64)


def test_the_recess_is_cut_by_class():
    """The height fields: a hex head has no recess; the four recesses are cut, deep at the
    centre; Pozidriv's ticks are grooves on the 45-degree diagonals, Phillips has none."""
    rng = np.random.default_rng(3)
    hexhead = geometry.make_head(rng, 3, "hex")
    assert float(hexhead.depth.max()) == 0.0
    centre = geometry.RASTER // 2
    for label in (0, 1, 2, 4):
        head = geometry.make_head(rng, label, "cheese", wear=0.0)
        assert head.depth[centre, centre] > 0.3, label
        assert 0.05 < (head.depth > 0.05).mean() < 0.5, label

    def tick_depth(label: int) -> float:
        """How much lower the head's top is on a recess diagonal than 10 degrees off it."""
        head = geometry.make_head(np.random.default_rng(5), label, "cheese", wear=0.0)
        a = np.radians(head.facts["angle"]) + np.pi / 4  # a diagonal of the recess
        r = np.linspace(0.5, 0.85, 60)
        on = geometry.sample(head, r * np.cos(a), r * np.sin(a))
        off = geometry.sample(head, r * np.cos(a + 0.17), r * np.sin(a + 0.17))
        return float(np.max(off - on))

    poz = geometry.make_head(np.random.default_rng(5), 2, "cheese", wear=0.0)
    assert poz.facts["ticks"] != "painted"  # (seed chosen so; painted ticks are not cut)
    assert tick_depth(2) > 0.005 > tick_depth(1)


def test_the_classes_look_different():
    """Model-free: the mean 28x28 model input of Phillips heads differs from that of hex
    heads and of hex sockets, under the same families."""
    means = {}
    for label in (0, 1, 3):
        crops = []
        for seed in range(6):
            rng = np.random.default_rng([seed, 9])
            style = "hex" if label == 3 else "cheese"
            image, box, _ = render_pbr.render_head(rng, label, 64, style=style, **PLAIN)
            crops.append(preprocess(image, box.as_list()).astype(float))
        means[label] = np.mean(crops, axis=0)
    centre = slice(9, 19)
    for other in (0, 3):
        diff = np.abs(means[1][centre, centre] - means[other][centre, centre]).mean()
        assert diff > 12.0, (other, diff)


def test_the_registry_knows_pbr_but_the_mixes_do_not():
    from screwcam.capture.synth_dataset import MIXES

    assert "pbr" in GENERATORS and all("pbr" not in mix for mix in MIXES.values())
    values = family_values("pbr", 3)
    assert values["style"] == render_pbr.HEX_STYLES and values["light"] == render_pbr.LIGHTS
    image, box, condition = render_one("pbr", np.random.default_rng(1), 2, 112)
    fams = families_of(condition)
    assert fams["gen"] == "pbr" and set(fams) == {"gen", "style", "finish", "light", "bg", "view"}
    assert image.shape == (112, 112, 3)


def test_a_missing_mitsuba_is_one_clear_error(tmp_path):
    """Mitsuba blocked from import: importing the generator still works (the device never
    needs it); rendering, and synth, say what is missing and how to install it."""
    code = (
        "import sys; sys.modules['mitsuba'] = None\n"
        "import numpy as np\n"
        "from screwcam import render_pbr\n"
        "from screwcam.errors import DatasetError\n"
        "try:\n"
        "    render_pbr.render_head(np.random.default_rng(0), 1)\n"
        "except DatasetError as exc:\n"
        "    print(exc)\n"
        "from screwcam.cli import main\n"
        f"sys.exit(main(['synth', '--out', r'{tmp_path / 'd'}', '--per-class', '1',"
        " '--generator', 'pbr', '--jobs', '1']))\n"
    )
    run = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "needs Mitsuba 3" in run.stdout and "screwcam[train]" in run.stdout
    assert run.returncode != 0 and "needs Mitsuba 3" in run.stderr
    assert "Traceback" not in run.stderr


def test_synth_with_the_pbr_generator_writes_a_dataset(tmp_path):
    out = tmp_path / "pbr"
    args = ["synth", "--out", str(out), "--per-class", "2", "--seed", "4", "--jobs", "1"]
    assert main([*args, "--generator", "pbr"]) == 0
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10
    assert {families_of(r["condition"])["gen"] for r in rows} == {"pbr"}
    assert {r["label"] for r in rows} == set(CLASSES)
    x = np.concatenate([np.load(out / f"X_{split}.npy") for split in ("train", "test")])
    assert x.shape == (10, 28, 28) and x.dtype == np.uint8 and x.std() > 10
    assert not (Path(out) / ".part").exists()


@pytest.mark.parametrize("diameter", [10, 40, 150])
def test_a_layer_head_has_the_asked_size_its_coverage_and_its_shadow(diameter):
    # render_layer gives the detector's test scenes ("pbr") a head to lay onto their own
    # surface: the box's longer side is the diameter, coverage is 0..1 and full inside
    # the head, the radiance is premultiplied (nothing outside the head), a low lamp
    # makes a pan head cast a shadow, and the shadow fades out at the layer's border
    rng = np.random.default_rng(diameter)
    layer = render_pbr.render_layer(rng, 1, diameter, style="pan", light="grazing")
    b = layer.box
    assert abs(max(b.w, b.h) - diameter) <= max(2, 0.05 * diameter)
    side = layer.alpha.shape[0]
    assert layer.radiance.shape == layer.shadow.shape == (side, side)
    assert all(a.dtype == np.float32 for a in (layer.radiance, layer.alpha, layer.shadow))
    assert b.x >= 0 and b.y >= 0 and b.x + b.w <= side and b.y + b.h <= side
    assert 0.0 <= layer.alpha.min() and layer.alpha.max() <= 1.0
    assert layer.alpha[b.y : b.y + b.h, b.x : b.x + b.w].mean() > 0.5  # a disc fills 0.79
    # the coverage render and the projected mesh agree on where the head is
    x, y, w, h = cv2.boundingRect((layer.alpha > 0.5).astype(np.uint8))
    assert max(abs(x - b.x), abs(y - b.y), abs(x + w - b.x - b.w), abs(y + h - b.y - b.h)) <= 2
    assert np.all(layer.radiance[layer.alpha == 0] == 0) and layer.radiance.min() >= 0
    solid = layer.alpha > 0.9
    assert (layer.radiance[solid] / layer.alpha[solid]).max() > 0.02  # the head is lit
    outside = layer.alpha < 0.01
    assert layer.shadow[outside].min() < 0.8  # somewhere on the ground: the cast shadow
    assert np.median(layer.shadow[outside]) > 0.9  # most of the ground is lit
    border = np.r_[layer.shadow[0], layer.shadow[-1], layer.shadow[:, 0], layer.shadow[:, -1]]
    assert np.allclose(border, 1.0)
    assert layer.info["generator"] == "pbr" and layer.info["light"] == "grazing"
    assert layer.info["style"] == "pan" and layer.info["view"] in render_pbr.LAYER_VIEWS


def test_a_layer_is_the_same_for_the_same_seed():
    a, b = (render_pbr.render_layer(np.random.default_rng(3), 4, 30) for _ in range(2))
    assert np.array_equal(a.radiance, b.radiance) and np.array_equal(a.shadow, b.shadow)
    assert np.array_equal(a.alpha, b.alpha) and a.box == b.box and a.info == b.info


def test_a_layer_refuses_what_it_cannot_draw():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="diameter"):
        render_pbr.render_layer(rng, 1, 2)
    with pytest.raises(ValueError, match="label"):
        render_pbr.render_layer(rng, 7, 30)
    with pytest.raises(ValueError, match="style"):
        render_pbr.render_layer(rng, 1, 30, style="hex")  # a Phillips head is not a hex head
    with pytest.raises(ValueError, match="light"):
        render_pbr.render_layer(rng, 1, 30, light="dim")  # the scene dims its heads
    with pytest.raises(ValueError, match="view"):
        render_pbr.render_layer(rng, 1, 30, view="tiny")  # a tiny head is a small diameter


def test_the_pbr_scene_family_without_mitsuba_is_one_clear_error():
    code = (
        "import sys; sys.modules['mitsuba'] = None\n"
        "import numpy as np\n"
        "from screwcam.errors import DatasetError\n"
        "from screwcam.training.detector_data import compose_scene\n"
        "compose_scene(np.random.default_rng(0), 'sdf')  # the other families still work\n"
        "try:\n"
        "    compose_scene(np.random.default_rng(0), 'pbr')\n"
        "except DatasetError as exc:\n"
        "    print(exc)\n"
    )
    run = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "needs Mitsuba 3" in run.stdout and "pip install 'screwcam[train]'" in run.stdout
