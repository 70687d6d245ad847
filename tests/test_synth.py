"""`screwcam synth` end to end through the real CLI, writing real files."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from screwcam.capture.synth_dataset import condition_of, is_test
from screwcam.classes import CLASSES, NUM_CLASSES
from screwcam.cli import main
from screwcam.dataset import load_dataset, load_samples
from screwcam.render import CONDITIONS

PER_CLASS = 12  # two samples of every condition per class: one train, one test


def _synth(out: Path, *extra: str, seed: int = 1) -> int:
    args = ["synth", "--out", str(out), "--per-class", str(PER_CLASS), "--seed", str(seed)]
    return main([*args, "--jobs", "1", *extra])


def test_synth_writes_the_dataset_layout(tmp_path, capsys):
    out = tmp_path / "ds"
    sheet = tmp_path / "sheet.png"
    assert _synth(out, "--sheet", str(sheet)) == 0
    assert "synth:" in capsys.readouterr().err  # progress and summary on stderr
    picture = cv2.imread(str(sheet))
    assert picture is not None and picture.shape[0] > 6 * 28 and picture.shape[1] > 10 * 28
    for split in ("train", "test"):
        x = np.load(out / f"X_{split}.npy")
        y = np.load(out / f"y_{split}.npy")
        assert x.ndim == 3 and x.shape[1:] == (28, 28) and x.dtype == np.uint8
        assert y.shape == (x.shape[0],) and y.dtype == np.int64
        assert x.std() > 10  # real images, not blank
        for name in CLASSES:
            assert (out / split / name).is_dir()
    x_train, x_test = np.load(out / "X_train.npy"), np.load(out / "X_test.npy")
    assert len(x_train) + len(x_test) == PER_CLASS * NUM_CLASSES
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == PER_CLASS * NUM_CLASSES
    per_class = Counter((r["label"], r["condition"]) for r in rows)
    assert per_class == Counter({(n, c): 2 for n in CLASSES for c in CONDITIONS})
    assert {r["split"] for r in rows} == {"train", "test"}
    for row in rows:
        png = cv2.imread(str(out / row["file"]), cv2.IMREAD_UNCHANGED)
        assert png.shape == (28, 28) and png.dtype == np.uint8
    # the PNGs and the arrays hold the same samples, in manifest order
    first_train = next(r for r in rows if r["split"] == "train")
    png = cv2.imread(str(out / first_train["file"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(png, x_train[0])
    train, test = load_dataset(out)
    assert len(train.y) == len(x_train) and set(test.conditions) <= set(CONDITIONS)


def test_synth_is_reproducible_per_seed(tmp_path):
    assert _synth(tmp_path / "a", seed=5) == 0
    assert _synth(tmp_path / "b", seed=5) == 0
    assert _synth(tmp_path / "c", seed=6) == 0
    a = np.load(tmp_path / "a" / "X_train.npy")
    assert np.array_equal(a, np.load(tmp_path / "b" / "X_train.npy"))
    assert not np.array_equal(a, np.load(tmp_path / "c" / "X_train.npy"))


def test_synth_refuses_a_non_empty_folder_without_force(tmp_path, capsys):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert _synth(out) == 2
    assert "--force" in capsys.readouterr().err
    assert not (out / "manifest.csv").exists()
    assert _synth(out, "--force") == 0
    assert (out / "manifest.csv").exists() and (out / "keep.txt").read_text() == "mine"


def test_synth_by_condition_tree(tmp_path, capsys):
    out = tmp_path / "bycond"
    assert _synth(out, "--by-condition") == 0
    files = sorted(out.rglob("*.png"))
    assert len(files) == PER_CLASS * NUM_CLASSES
    assert not list(out.rglob("*.part"))
    for path in files:
        condition, label = path.parent.parent.name, path.parent.name
        assert condition in CONDITIONS and label in CLASSES
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert image.shape == (28, 28) and image.dtype == np.uint8
    samples = load_samples([out])
    assert len(samples.y) == PER_CLASS * NUM_CLASSES
    assert set(samples.conditions) == set(CONDITIONS)
    assert _synth(out, "--by-condition") == 2  # not empty any more
    assert "--force" in capsys.readouterr().err


def test_conditions_and_splits_are_balanced():
    n = 600
    conditions = Counter(condition_of(i) for i in range(n))
    assert set(conditions.values()) == {n // len(CONDITIONS)}
    test_share = sum(is_test(i, 0.3) for i in range(n)) / n
    assert abs(test_share - 0.3) < 0.02
    assert not any(is_test(i, 0.0) for i in range(n))
