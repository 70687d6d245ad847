"""The TensorFlow half of `screwcam bench`: the thesis's way of classifying
(`model.predict` per crop) and a float32 TFLite twin of the bundled model.

Kept apart from the rest of the benchmark because the service must never import TensorFlow;
`screwcam.bench.bench` calls these only when TensorFlow is installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.timing import median_seconds


def load_keras_model(model_dir: Path) -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import screwcam.training.models  # noqa: F401  (registers the custom layers)

    return keras.models.load_model(Path(model_dir) / "model.keras")


def predict_times(model: Any, crops: np.ndarray, repeats: int) -> dict[str, float]:
    """Median seconds of `model.predict` for one crop, and for all `crops` in one call."""
    x = crops.astype(np.float32)[..., None]
    one = x[:1]
    return {
        "single_s": median_seconds(lambda: model.predict(one, verbose=0), repeats, warmup=1),
        "batch_s": median_seconds(lambda: model.predict(x, verbose=0), repeats, warmup=1),
    }


def float32_bundle(model: Any, model_dir: Path, out_dir: Path) -> Path:
    """Write a float32 (unquantized) bundle of the same Keras model into `out_dir`,
    with the export command's own converter and metadata, and return its path."""
    from screwcam.bundle import write_bundle
    from screwcam.export.export import bundle_meta, convert

    out_dir.mkdir(parents=True, exist_ok=True)
    tflite = convert(model, "none", np.zeros((0, 28, 28), np.uint8))
    (out_dir / "model.tflite").write_bytes(tflite)
    metrics = json.loads((Path(model_dir) / "metrics.json").read_text("utf-8"))
    meta = bundle_meta(out_dir / "model.tflite", Path(model_dir).name, "none", metrics)
    return write_bundle(out_dir, meta, {"model.tflite": tflite}, force=True)


def tensorflow_rss_mb() -> float:
    """Resident memory of this process after `import tensorflow` (run it in a fresh
    interpreter to see what TensorFlow alone costs)."""
    import tensorflow  # noqa: F401

    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


if __name__ == "__main__":  # used by the bench: python -m screwcam.bench.keras_bench rss
    print(json.dumps({"rss_mb": tensorflow_rss_mb()}))
