"""`screwcam train`: every preset trains on a tiny thesis-format set and writes its
files; output folders are never overwritten without --force; --seed repeats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _training_helpers import write_thesis_npy

from screwcam.classes import CLASSES
from screwcam.cli import main

# training and export need TensorFlow (the [train] extra); skipped on the device set
pytestmark = pytest.mark.tensorflow

FILES = (
    "model.keras",
    "metrics.json",
    "training_curves.png",
    "confusion_matrix.png",
    "MODEL_CARD.md",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_thesis_npy(tmp_path_factory.mktemp("thesis"), n_train=16, n_test=4, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["logreg", "mlp", "onevsall", "cnn1", "edge"])
def test_preset_trains_and_writes_files(preset: str, tiny: Path, tmp_path: Path):
    import keras

    import screwcam.training.models  # noqa: F401  (custom layer registration)

    out = tmp_path / preset
    assert (
        main(["train", "--data", str(tiny), "--preset", preset, "--epochs", "1", "--out", str(out)])
        == 0
    )
    for name in FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp dir left"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["preset"] == preset and metrics["epochs"] == 1
    test = metrics["test"]
    assert test["n"] == 20 and 0.0 <= test["accuracy"] <= 1.0
    assert set(test["per_class"]) == set(CLASSES)
    assert np.asarray(test["confusion"]).sum() == 20
    assert metrics["data"]["train"]["n"] == 80
    model = keras.models.load_model(out / "model.keras")
    assert model.layers[1].__class__.__name__ == "Rescaling"
    names = {layer.__class__.__name__ for layer in model.layers}
    assert not any(n.startswith("Random") for n in names), names
    probs = model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    assert probs.shape == (2, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    if preset == "cnn1":
        kinds = [layer.__class__.__name__ for layer in model.layers[1:]]
        assert kinds == ["Rescaling", "Conv2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]


def test_refuses_non_empty_out_without_force(tiny: Path, tmp_path: Path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    assert main(["train", "--data", str(tiny), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "x"


def test_bad_dataset_is_one_line_error(tmp_path: Path, capsys):
    assert main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_same_seed_same_model(tiny: Path, tmp_path: Path):
    import keras

    weights = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert (
            main(
                [
                    "train",
                    "--data",
                    str(tiny),
                    "--preset",
                    "logreg",
                    "--epochs",
                    "2",
                    "--seed",
                    "7",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        weights.append(keras.models.load_model(out / "model.keras").get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_force_replaces_existing(tiny: Path, tmp_path: Path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert (
        main(
            [
                "train",
                "--data",
                str(tiny),
                "--preset",
                "logreg",
                "--epochs",
                "1",
                "--force",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert not (out / "old.txt").exists() and (out / "model.keras").is_file()


@pytest.mark.slow
def test_augmenter_is_seeded_and_keeps_range():
    import tensorflow as tf
    from _training_helpers import make_set

    from screwcam.training.augment import STRONG, Augmenter

    x, y = make_set(4, seed=2)
    batch = tf.constant(x.astype(np.float32)[..., None])
    a1, _ = Augmenter(STRONG, seed=5)(batch, tf.constant(y), tf.constant(3, tf.int64))
    a2, _ = Augmenter(STRONG, seed=5)(batch, tf.constant(y), tf.constant(3, tf.int64))
    b, _ = Augmenter(STRONG, seed=5)(batch, tf.constant(y), tf.constant(4, tf.int64))
    a1, a2, b = a1.numpy(), a2.numpy(), b.numpy()
    assert a1.shape == batch.shape and a1.dtype == np.float32
    assert a1.min() >= 0.0 and a1.max() <= 255.0
    np.testing.assert_array_equal(a1, a2)
    assert np.abs(a1 - b).mean() > 1.0  # another step, other images
    assert np.abs(a1 - batch.numpy()).mean() > 1.0  # it does change them


def test_tensorflow_commands_show_progress_but_not_native_noise() -> None:
    """Commands that load TensorFlow point fd 2 at /dev/null (its C++ start-up noise) and
    sys.stderr at the real stderr: our progress log lines must still show."""
    code = (
        "import logging, os\n"
        "from screwcam import cli\n"
        "logging.basicConfig(level=logging.INFO, handlers=[cli._StderrHandler()])\n"
        "with cli._quiet_native_stderr():\n"
        "    logging.getLogger('screwcam.x').info('epoch 1/2')\n"
        "    os.write(2, b'native noise\\n')\n"
        "logging.getLogger('screwcam.x').info('after')\n"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 1/2" in done.stderr and "after" in done.stderr
    assert "native noise" not in done.stderr
