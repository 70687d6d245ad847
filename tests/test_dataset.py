"""The dataset format: DatasetWriter and the one loader, on real PNG/JPEG files and
real .npy arrays, with inputs made by the shared preprocessing from demo renders."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from _capture_helpers import demo_frames
from _image_helpers import jpeg_with_exif, png_with_broken_profile

from screwcam.classes import CLASSES, NUM_CLASSES
from screwcam.dataset import (
    MANIFEST_COLUMNS,
    DatasetWriter,
    load_dataset,
    load_samples,
)
from screwcam.detector import default_main_head
from screwcam.errors import DatasetError
from screwcam.images import read_image
from screwcam.preprocess import preprocess, to_model_input
from screwcam.render import render_sample


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n real model inputs (render -> find head -> preprocess) and their labels."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        label = i % NUM_CLASSES
        image, box = render_sample(rng, label, "even", 96)
        xs.append(preprocess(image, box.as_list()))
        ys.append(label)
    return np.stack(xs), np.asarray(ys, np.int64)


def _renormalized(x: np.ndarray) -> np.ndarray:
    return np.stack([to_model_input(img) for img in x])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "dataset"
    x, y = _inputs(15)
    with DatasetWriter(out) as writer:
        for i in range(15):
            split = "train" if i < 10 else "test"
            writer.add(x[i], int(y[i]), split, "clip.mp4", frame_index=i, condition="dim")
    return out, x, y


def test_writer_layout_and_manifest(written):
    out, x, y = written
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["train", "test", "manifest.csv", "X_train.npy", "y_train.npy", "X_test.npy", "y_test.npy"]
    )
    assert {p.name for p in (out / "train").iterdir()} == set(CLASSES)
    with open(out / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        rows = list(reader)
    assert len(rows) == 15
    for i, row in enumerate(rows):
        png = out / row["file"]
        assert row["file"].startswith(f"{row['split']}/{CLASSES[y[i]]}/")
        assert row["label"] == CLASSES[y[i]]
        assert (row["source"], row["frame_index"], row["condition"]) == ("clip.mp4", str(i), "dim")
        assert hashlib.sha256(png.read_bytes()).hexdigest() == row["sha256"]
        assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_GRAYSCALE), x[i])
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_round_trip_through_load_dataset(written):
    out, x, y = written
    train, test = load_dataset(out)
    # every sample goes through the shared to_model_input again on loading...
    assert np.array_equal(train.x, _renormalized(x[:10]))
    assert np.array_equal(test.x, _renormalized(x[10:]))
    # ...which leaves already-normalized inputs as they were, up to one gray level
    # (normalize() truncates instead of rounding, so it is not exactly idempotent)
    assert np.abs(train.x.astype(int) - x[:10]).max() <= 1
    assert train.y.tolist() == y[:10].tolist() and test.y.tolist() == y[10:].tolist()
    assert train.y.dtype == np.int64 and train.x.dtype == np.uint8
    assert set(train.conditions) == {"dim"}
    assert all(Path(p).is_file() for p in train.paths)


def test_round_trip_the_thesis_notebook_way(written):
    out, x, y = written
    # what the thesis notebooks do: load('Dataset/X_train.npy').astype(np.float32).reshape(-1, 784)
    x_train = np.load(out / "X_train.npy").astype(np.float32).reshape(-1, 784)
    y_train = np.load(out / "y_train.npy")
    assert x_train.shape == (10, 784)
    assert np.array_equal(x_train.reshape(-1, 28, 28).astype(np.uint8), x[:10])
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[y_train]  # == to_categorical(y_train)
    assert one_hot.argmax(axis=1).tolist() == y[:10].tolist()


def test_image_trees_load_like_the_arrays(written):
    out, x, y = written
    # without the arrays, the train/ and test/ trees are read
    trees = out.parent / "trees"
    trees.mkdir()
    for split in ("train", "test"):
        (out / split).rename(trees / split)  # module fixture: put it back afterwards
    try:
        train, test = load_dataset(trees)
        expected = _renormalized(x[:10]).reshape(10, -1).tolist()
        assert sorted(train.x.reshape(10, -1).tolist()) == sorted(expected)
        assert sorted(test.y.tolist()) == sorted(y[10:].tolist())
        assert set(train.conditions) == {""}
    finally:
        for split in ("train", "test"):
            (trees / split).rename(out / split)


def test_writer_refuses_a_non_empty_folder_unless_forced(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    x, y = _inputs(4)
    with pytest.raises(DatasetError, match="--force"), DatasetWriter(out):
        pass
    with DatasetWriter(out, force=True) as writer:
        for i in range(4):
            writer.add(x[i], int(y[i]), "train", "a.mp4", i)
    with DatasetWriter(out, force=True) as writer:
        writer.add(x[0], 3, "test", "b.mp4", 0)
    train, test = load_dataset(out)
    assert len(train) == 0 and test.y.tolist() == [3]
    assert not list((out / "train").rglob("*.png"))  # the old dataset is gone...
    assert (out / "notes.txt").read_text() == "mine"  # ...other files are left alone


def test_writer_leaves_nothing_when_the_block_fails(tmp_path):
    out = tmp_path / "ds"
    x, _ = _inputs(2)
    with pytest.raises(RuntimeError), DatasetWriter(out) as writer:
        writer.add(x[0], 1, "train", "a.mp4", 0)
        raise RuntimeError("slicing crashed")
    assert list(out.iterdir()) == []


def test_writer_rejects_wrong_samples(tmp_path):
    with DatasetWriter(tmp_path / "ds") as writer:
        with pytest.raises(DatasetError, match="28, 28"):
            writer.add(np.zeros((32, 32), np.uint8), 0, "train", "a.mp4", 0)
        with pytest.raises(DatasetError, match="valid labels"):
            writer.add(np.zeros((28, 28), np.uint8), 7, "train", "a.mp4", 0)
        with pytest.raises(DatasetError, match="split"):
            writer.add(np.zeros((28, 28), np.uint8), 0, "val", "a.mp4", 0)


# -- the thesis's own arrays -------------------------------------------------------------


def test_thesis_float_one_hot_arrays(tmp_path):
    x, y = _inputs(10, seed=1)
    np.save(tmp_path / "X_test.npy", (x / 255.0).astype(np.float32)[..., None])  # (N,28,28,1)
    np.save(tmp_path / "y_test.npy", np.eye(NUM_CLASSES, dtype=np.float32)[y])  # one-hot
    samples = load_samples([tmp_path / "X_test.npy"])
    assert samples.y.tolist() == y.tolist()
    assert samples.x.dtype == np.uint8 and samples.x.shape == (10, 28, 28)
    assert np.abs(samples.x.astype(int) - x.astype(int)).max() <= 2  # float rounding only
    assert samples.paths[3] == "X_test.npy[3]"


def test_thesis_arrays_0_255_floats_and_digit_string_labels(tmp_path):
    x, y = _inputs(5, seed=2)
    np.save(tmp_path / "X_train.npy", x.astype(np.float64))
    np.save(tmp_path / "y_train.npy", np.asarray([str(v) for v in y]))
    np.save(tmp_path / "X_test.npy", x[:2])
    np.save(tmp_path / "y_test.npy", y[:2].astype(np.int32))
    train, test = load_dataset(tmp_path)
    assert np.array_equal(train.x, _renormalized(x)) and train.y.tolist() == y.tolist()
    assert np.array_equal(test.x, _renormalized(x[:2])) and test.y.dtype == np.int64


def test_thesis_arrays_are_normalized_by_the_shared_preprocessing(tmp_path):
    raw = np.random.default_rng(3).integers(60, 120, (3, 28, 28)).astype(np.uint8)  # low contrast
    np.save(tmp_path / "X_a.npy", raw)
    np.save(tmp_path / "y_a.npy", np.array([0, 1, 2]))
    samples = load_samples([tmp_path / "X_a.npy"])
    assert np.array_equal(samples.x, np.stack([to_model_input(r) for r in raw]))


@pytest.mark.parametrize(
    ("x", "y", "problem"),
    [
        (np.zeros((3, 32, 32), np.uint8), np.zeros(3, int), "shape"),
        (np.zeros((3, 28, 28), np.uint8), np.array([0, 5, 1]), "outside 0-4"),
        (np.zeros((3, 28, 28), np.uint8), np.array([0, -1, 1]), "outside 0-4"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros(4, int), "3 images but"),
        (np.zeros((3, 28, 28), np.uint8), np.array(["1", "2", "nut"]), "nut"),
        (np.zeros((3, 28, 28), np.uint8), np.full((3, 5), 0.2), "not one-hot"),
        (np.full((3, 28, 28), 300.0), np.zeros(3, int), "0..1 or 0..255"),
    ],
)
def test_bad_thesis_arrays_name_the_file(tmp_path, x, y, problem):
    np.save(tmp_path / "X_bad.npy", x)
    np.save(tmp_path / "y_bad.npy", y)
    with pytest.raises(DatasetError, match=problem) as info:
        load_samples([tmp_path / "X_bad.npy"])
    assert "_bad.npy" in str(info.value)


def test_missing_labels_file_is_named(tmp_path):
    np.save(tmp_path / "X_only.npy", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="y_only.npy"):
        load_samples([tmp_path / "X_only.npy"])


# -- folder trees of photos ----------------------------------------------------------------


def test_folder_tree_classes_conditions_and_photo_sizes(tmp_path):
    (photo,), _ = demo_frames(1, heads=1, seed=0)  # a 320x240 "photo" of one head
    crop, _ = _inputs(1)
    (tmp_path / "shop" / "dim" / "torx").mkdir(parents=True)
    (tmp_path / "shop" / "hex socket").mkdir(parents=True)
    (tmp_path / "3").mkdir()
    cv2.imwrite(str(tmp_path / "shop" / "dim" / "torx" / "a.jpg"), photo)
    cv2.imwrite(str(tmp_path / "shop" / "hex socket" / "b.png"), crop[0])
    cv2.imwrite(str(tmp_path / "3" / "c.bmp"), np.full((200, 200, 3), 90, np.uint8))  # no head
    samples = load_samples([tmp_path])
    by_name = {Path(p).name: i for i, p in enumerate(samples.paths)}
    assert samples.y[by_name["a.jpg"]] == 4
    assert samples.conditions[by_name["a.jpg"]] == "shop/dim"
    assert samples.y[by_name["b.png"]] == 0 and samples.conditions[by_name["b.png"]] == "shop"
    assert samples.y[by_name["c.bmp"]] == 3 and samples.conditions[by_name["c.bmp"]] == ""
    assert samples.no_head == 1
    # a photo goes through exactly what the live service does: main head + preprocess
    decoded = cv2.imread(str(tmp_path / "shop" / "dim" / "torx" / "a.jpg"))
    box = default_main_head(decoded)  # the shipped bundle's detector
    assert box is not None
    assert np.array_equal(samples.x[by_name["a.jpg"]], preprocess(decoded, box.as_list()))
    assert np.array_equal(samples.x[by_name["b.png"]], to_model_input(crop[0]))
    # a class folder given directly: no condition
    only = load_samples([tmp_path / "shop" / "dim" / "torx"])
    assert only.y.tolist() == [4] and only.conditions.tolist() == [""]


def test_photos_are_loaded_upright_by_their_exif_orientation(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 (turn 90 degrees clockwise
    to view) is loaded as a viewer shows it, as `screwcam detect` and uploads read it."""
    (photo,), _ = demo_frames(1, heads=1, seed=0)  # a 320x240 "photo" of one head
    (tmp_path / "torx").mkdir()
    path = tmp_path / "torx" / "phone.jpg"
    path.write_bytes(jpeg_with_exif(photo, 6))
    stored = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert stored.shape == (240, 320, 3)
    upright = cv2.rotate(stored, cv2.ROTATE_90_CLOCKWISE)
    assert np.array_equal(read_image(path), upright)
    samples = load_samples([tmp_path])
    box = default_main_head(upright)
    assert box is not None and len(samples) == 1 and samples.no_head == 0
    assert np.array_equal(samples.x[0], preprocess(upright, box.as_list()))
    sideways = default_main_head(stored)
    assert sideways is not None
    assert not np.array_equal(samples.x[0], preprocess(stored, sideways.as_list()))


def test_a_broken_png_colour_profile_is_dropped_quietly(tmp_path, capfd):
    """libpng warns on stderr about a broken iCCP profile (scikit-image's page.png has
    one); the profile is not used, so the reader drops it: same pixels, no warning."""
    image = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    (tmp_path / "profile.png").write_bytes(png_with_broken_profile(image))
    capfd.readouterr()
    assert np.array_equal(read_image(tmp_path / "profile.png"), image)
    gray = read_image(tmp_path / "profile.png", cv2.IMREAD_GRAYSCALE)
    assert gray.shape == (48, 64)
    assert "libpng" not in capfd.readouterr().err


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / "torx").mkdir()
    (tmp_path / "torx" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DatasetError, match="broken.png"):
        load_samples([tmp_path])


def test_image_outside_a_class_folder_is_named(tmp_path):
    (tmp_path / "misc").mkdir()
    cv2.imwrite(str(tmp_path / "misc" / "x.png"), np.zeros((28, 28), np.uint8))
    with pytest.raises(DatasetError, match=r"x\.png.*'misc'"):
        load_samples([tmp_path])


def test_not_a_dataset_folder(tmp_path):
    with pytest.raises(DatasetError, match="X_train.npy"):
        load_dataset(tmp_path)


def test_thesis_binary_silhouettes_are_scaled(tmp_path):
    rng = np.random.default_rng(4)
    binary = (rng.random((4, 28, 28)) > 0.5).astype(np.int64)  # 0/1, like a silhouette
    np.save(tmp_path / "X_s.npy", binary)
    np.save(tmp_path / "y_s.npy", np.array([0, 1, 2, 3]))
    samples = load_samples([tmp_path / "X_s.npy"])
    assert np.array_equal(samples.x, _renormalized((binary * 255).astype(np.uint8)))
    assert set(np.unique(samples.x).tolist()) == {0, 255}
