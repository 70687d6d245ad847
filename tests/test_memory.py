"""What the live service keeps in memory: it must not load what only some requests,
or only training, need. The real service (demo source, shipped bundle, real LiteRT)
runs in a fresh `python -P` process that reports its own sys.modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _service_helpers import free_port, model_dir

# Never on the device, or only for some requests: TensorFlow/Keras (training),
# matplotlib, scikit-image and SciPy (training and reports), paho (MQTT is off by
# default), numpy.ma (np.percentile imports it), the trainers and the 3-D renderer,
# Teach's adaptation (built when a user teaches).
NOT_AT_START = (
    "tensorflow",
    "keras",
    "matplotlib",
    "skimage",
    "scipy",
    "paho",
    "numpy.ma",
    "screwcam.training",
    "screwcam.export",
    "screwcam.render3d",
    "screwcam.adapt",
)

SERVE_AND_REPORT = """
import json, sys
from screwcam.edge_service.config import load_config, with_overrides
from screwcam.edge_service.serve import Service

config = with_overrides(
    load_config(None),
    {
        "camera": {"source": "demo"},
        "model": {"path": sys.argv[1]},
        "server": {"host": "127.0.0.1", "port": int(sys.argv[2])},
    },
)
service = Service(config)
service.start()
try:
    first = service.pipeline.wait_for_result(0, timeout=30)
    second = None if first is None else service.pipeline.wait_for_result(first.seq, timeout=30)
finally:
    service.stop()
uploads = service.upload_analyzer.classifier
print(json.dumps({
    "frames": 0 if second is None else second.seq,
    "modules": sorted(sys.modules),
    "upload_classifier_built": getattr(uploads, "built", True),
}))
"""


def test_serve_loads_nothing_that_only_training_or_some_requests_need() -> None:
    state = tempfile.mkdtemp(prefix="screwcam-state-")
    out = subprocess.run(
        [sys.executable, "-P", "-c", SERVE_AND_REPORT, str(model_dir()), str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_STATE_HOME": state},
        cwd=Path(tempfile.gettempdir()),
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["frames"] >= 2, "the service analyzed no frames"
    loaded = [
        m for m in report["modules"] if any(m == n or m.startswith(n + ".") for n in NOT_AT_START)
    ]
    assert not loaded, f"serve imported {loaded} at start-up"
    assert "screwcam.edge_service.pipeline" in report["modules"]  # the check saw the service
    assert not report["upload_classifier_built"], "the upload interpreter was built without one"
