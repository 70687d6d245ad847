"""Raw LiteRT outputs of a model, for comparing architectures bit for bit.

    python raw_outputs.py MODEL.tflite CROPS_DIR OUT.npz [xnnpack|builtin|reference]

Runs on x86 and, under emulation, on aarch64 with nothing but NumPy, OpenCV and
ai_edge_litert: the same int8 input tensors (every 28x28 PNG under CROPS_DIR in
sorted order, then seeded random tensors that reach every input value) go through the
interpreter at 2 threads, with XNNPACK as the service runs it (default) or with
TFLite's own kernels; OUT.npz holds the inputs, the raw output tensor (no
dequantization), the output scale and the LiteRT version.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

RANDOM_INPUTS = 64


def inputs(crops_dir: Path, dtype: np.dtype, scale: float, zero: int) -> np.ndarray:
    files = sorted(crops_dir.rglob("*.png"))
    crops = np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])
    if dtype == np.float32:
        real = crops.astype(np.float32)
    else:
        info = np.iinfo(dtype)
        real = np.clip(np.round(crops / scale) + zero, info.min, info.max).astype(dtype)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(RANDOM_INPUTS, *crops.shape[1:]), dtype=np.int64)
    if dtype == np.float32:
        noise = noise.astype(np.float32)
    else:
        info = np.iinfo(dtype)
        noise = np.clip(noise + info.min, info.min, info.max).astype(dtype)
    return np.concatenate([real, noise])[..., np.newaxis]


KERNELS = {
    "xnnpack": OpResolverType.AUTO,  # what the service runs: XNNPACK delegate
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,  # TFLite's optimized
    "reference": OpResolverType.BUILTIN_REF,  # TFLite's portable reference kernels
}


def main(model: str, crops_dir: str, out: str, kernels: str = "xnnpack") -> int:
    interpreter = Interpreter(
        model_path=model, num_threads=2, experimental_op_resolver_type=KERNELS[kernels]
    )
    inp = interpreter.get_input_details()[0]
    scale, zero = inp["quantization"]
    x = inputs(Path(crops_dir), np.dtype(inp["dtype"]), scale or 1.0, int(zero))
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.savez(
        out,
        inputs=x,
        outputs=y,
        crops=np.array(len(x) - RANDOM_INPUTS),
        scale=np.array(interpreter.get_output_details()[0]["quantization"][0]),
        litert=np.array(metadata.version("ai-edge-litert")),
    )
    print(f"{len(x)} inputs -> outputs {y.shape} {y.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
