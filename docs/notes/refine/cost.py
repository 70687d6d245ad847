"""Where the box regressor's time goes (session 16): the shipped bundle on 60 demo frames
(5 candidates each), best of 3 passes, ms per frame: proposals, the regressor's crops and
network, the verifier's crops and network, detect() with and without the regressor, and the
crops split into cutting and OpenCV's area resize.

    .venv/bin/python -P docs/notes/refine/cost.py
"""

import time

import cv2
import numpy as np

from screwcam.bundle import read_bundle
from screwcam.detector import load_detector, regressor_crops, verifier_crops
from screwcam.preprocess import crop_square, to_gray
from screwcam.render import DemoSource

det = load_detector(read_bundle("models/default"))
src = DemoSource(realtime=False, seed=1)
src.open()
grays = [to_gray(src.render(i)[0]) for i in range(0, 300, 5)]
src.close()


def t(f, n=3):
    best = []
    for _ in range(n):
        t0 = time.perf_counter()
        for g in grays:
            f(g)
        best.append((time.perf_counter() - t0) / len(grays) * 1e3)
    return min(best)


props = {id(g): det._propose(g, det.verifier.detector_threshold) for g in grays}
print("candidates per frame", np.mean([len(v) for v in props.values()]))
print("propose", t(lambda g: det._propose(g, det.verifier.detector_threshold)))
print("reg crops", t(lambda g: regressor_crops(g, [b for b, _ in props[id(g)]], 0.6)))
cr = {id(g): regressor_crops(g, [b for b, _ in props[id(g)]], 0.6) for g in grays}
print("reg run", t(lambda g: det.regressor.run(cr[id(g)])))
print("reg call", t(lambda g: det.regressor(g, props[id(g)])))
vc = {id(g): verifier_crops(g, [b for b, _ in props[id(g)]]) for g in grays}
print("ver crops", t(lambda g: verifier_crops(g, [b for b, _ in props[id(g)]])))
print("ver run", t(lambda g: det.verifier.run(vc[id(g)])))
print("detect full", t(lambda g: det.detect(g)))
print("detect noreg", t(lambda g: det.detect(g, regress=False)))


def crops_only(g, m):
    return [crop_square(g, b.as_list(), m) for b, _ in props[id(g)]]


print("crop_square 0.6", t(lambda g: crops_only(g, 0.6)))
print("crop_square 0.12", t(lambda g: crops_only(g, 0.12)))
cs = {id(g): crops_only(g, 0.6) for g in grays}
print(
    "resize area 0.6",
    t(lambda g: [cv2.resize(c, (28, 28), interpolation=cv2.INTER_AREA) for c in cs[id(g)]]),
)
print("sizes", np.percentile([c.shape[0] for v in cs.values() for c in v], [10, 50, 90]))
