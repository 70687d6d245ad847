"""The bundled edge model's penultimate layer is named `embedding`, so it can be exported
as a second output (for on-device adaptation), and that export runs on LiteRT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_model_exports_its_embedding_as_a_second_output(tmp_path):
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    from ai_edge_litert.interpreter import Interpreter

    import screwcam.training.models  # noqa: F401  (custom layer registration)
    from screwcam.preprocess import preprocess
    from screwcam.render import render_sample

    model = keras.models.load_model(ROOT / "models" / "default" / "model.keras")
    embedding = model.get_layer("embedding").output
    both = keras.Model(model.input, [model.output, embedding])
    rng = np.random.default_rng(0)
    crops = []
    for label in range(5):
        image, box = render_sample(rng, label, "even")
        crops.append(preprocess(image, box.as_list()))
    x = np.stack(crops).astype(np.float32)[..., None]
    probs, vectors = both.predict(x, verbose=0)
    assert vectors.shape == (5, model.get_layer("probs").input.shape[-1])
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), atol=1e-5)

    converter = tf.lite.TFLiteConverter.from_keras_model(both)
    path = tmp_path / "both.tflite"
    path.write_bytes(converter.convert())
    interpreter = Interpreter(model_path=str(path))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    shapes = sorted(o.shape for o in outputs)
    assert shapes == sorted([probs.shape, vectors.shape])
    got = next(o for o in outputs if o.shape == vectors.shape)
    np.testing.assert_allclose(got, vectors, atol=1e-3)
