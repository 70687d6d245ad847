"""`screwcam export`: int8 export of a model trained on an easy set passes the
Keras/TFLite parity gate and writes a bundle the device loader accepts; a model
that int8 cannot represent fails the gate and leaves no bundle behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _training_helpers import write_thesis_npy

from screwcam.classes import CLASSES
from screwcam.classifier import Classifier, load_bundle
from screwcam.cli import main
from screwcam.errors import ModelError
from screwcam.preprocess import PREPROCESS_VERSION

# training and export need TensorFlow (the [train] extra); skipped on the device set
pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def easy(tmp_path_factory) -> Path:
    return write_thesis_npy(tmp_path_factory.mktemp("easy"), n_train=60, n_test=40, seed=3)


@pytest.fixture(scope="module")
def trained(easy: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "edge"
    assert (
        main(
            [
                "train",
                "--data",
                str(easy),
                "--preset",
                "edge",
                "--epochs",
                "12",
                "--seed",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_int8_export_passes_parity(trained: Path, easy: Path, tmp_path: Path, capsys):
    model_dir = tmp_path / "cnn"
    shutil.copytree(trained, model_dir)
    assert main(["export", str(model_dir), "--min-agreement", "0.99"]) == 0
    bundle = load_bundle(model_dir)
    meta = bundle.meta.to_json()
    assert meta["quantization"] == "int8"
    assert meta["input"]["dtype"] == "int8" and meta["output"]["dtype"] == "int8"
    assert meta["classes"] == list(CLASSES)
    assert meta["parity"]["agreement"] >= 0.99 and meta["parity"]["n"] == 200
    assert meta["latency"]["statistic"] == "median"
    assert (model_dir / "labels.txt").read_text().split() == list(CLASSES)
    assert "## Device bundle" in (model_dir / "MODEL_CARD.md").read_text()
    assert json.loads((model_dir / "metrics.json").read_text())["export"]["size_bytes"] > 0
    out = capsys.readouterr()
    assert "agreement" in out.out and "median" in out.err
    # the device code on the exported file agrees with the Keras model
    import keras

    x = np.load(easy / "X_test.npy")
    keras_pred = (
        keras.models.load_model(model_dir / "model.keras")
        .predict(x.astype(np.float32)[..., None], verbose=0)
        .argmax(1)
    )
    lite_pred = Classifier(model_dir).classify(x).argmax(1)
    assert (keras_pred == lite_pred).mean() >= 0.99
    # the embedding (the layer before the softmax) is the second output, named in meta
    from screwcam.training.models import EDGE_WIDTHS

    width = EDGE_WIDTHS[-1]  # the embedding is the last block's pooled channels
    assert meta["embedding"]["shape"] == [-1, width] and meta["embedding"]["dtype"] == "int8"
    assert meta["parity"]["embedding_cosine"] > 0.98
    assert bundle.part("base_head") is not None
    emb = Classifier(model_dir).embed(x[:8])
    assert emb.shape == (8, width) and emb.dtype == np.float32
    head = np.load(model_dir / "base_head.npz")
    assert ((emb @ head["w"] + head["b"]).argmax(1) == lite_pred[:8]).mean() >= 0.85
    # a second export refuses to replace the bundle without --force
    assert main(["export", str(model_dir)]) == 2
    assert main(["export", str(model_dir), "--force", "--quantize", "float16"]) == 0
    assert load_bundle(model_dir).meta.input.dtype == "float32"
    assert main(["export", str(model_dir), "--force", "--no-embedding"]) == 0
    assert load_bundle(model_dir).meta.embedding is None
    with pytest.raises(ModelError, match="without an embedding output"):
        Classifier(model_dir).embed(x[:2])


def test_parity_failure_leaves_no_bundle(easy: Path, tmp_path: Path):
    """Logits scaled so small that every int8 softmax output is the same value:
    Keras still ranks the classes, the int8 model cannot -> the gate must fail."""
    import keras

    from screwcam.export.export import export

    model_dir = tmp_path / "flat"
    model_dir.mkdir()
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255)(keras.layers.Flatten()(inp))
    dense = keras.layers.Dense(5, activation="softmax")
    model = keras.Model(inp, dense(x))
    w, b = dense.get_weights()
    rng = np.random.default_rng(0)
    dense.set_weights([rng.normal(0, 1e-4, w.shape).astype(np.float32), b])
    model.save(model_dir / "model.keras")
    metrics = {
        "preset": "test",
        "preprocess_version": PREPROCESS_VERSION,
        "data": {"source": str(easy)},
        "test": {"accuracy": 0.2, "n": 60},
    }
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ModelError, match="agrees with the Keras model on only"):
        export(model_dir, "int8", 0.99)
    left = sorted(p.name for p in model_dir.iterdir())
    assert left == ["metrics.json", "model.keras"]
