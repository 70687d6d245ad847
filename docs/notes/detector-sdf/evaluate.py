"""Paired evaluation of detector folders (detector + verifier) on the same test scenes.

    .venv/bin/python -P docs/notes/detector-sdf/evaluate.py OUT.json FAMILIES N DIR[:HEAT,P]...

For each family (comma separated; `demo` = the demo camera's ground truth, 3 x 150
frames, as `train-verifier` tests it) the N test scenes of `screwcam train-verifier`
(640x480, the test seed no training run uses) are rendered once, and every detector
folder (a `train-detector` folder or a bundle such as models/default) is scored on each
scene as it comes: recall and precision at IoU >= 0.5, heads >= 24 px, detector alone and
with its verifier (the same numbers train-verifier writes into detector.json). A folder
given as DIR:HEAT,P is scored at those verifier thresholds instead of its own (e.g.
`build/default-detector/detector:0.2,0.7`). No TensorFlow: LiteRT only.

Each row also holds the best F1 over thresholds, the same oracle choice for every
detector (a verifier's P(head) scale moves between training runs, so F1 at a fixed
threshold mixes the detector's quality with where its verifier happens to cut):
`best_f1_alone` over heat 0.15..0.70, `best_f1_verifier` over P(head) 0.05..0.95 at the
verifier's own heat threshold, each as [F1, threshold]. With SCENE_CACHE=DIR set, each
family's scenes are kept in DIR (pickles, about 46 MB per 150 scenes) and read from
there by later runs: the same scenes, scored in seconds instead of minutes.

docs/notes/thesis-pictures/heldout_generators.json was made with:

    git archive 5e746a3 models/default | tar -x -C /tmp/before12 --strip-components 2
    .venv/bin/python -P docs/notes/detector-sdf/evaluate.py \
        docs/notes/thesis-pictures/heldout_generators.json pbr,sdf,render,photo,gen2,demo 150 \
        /tmp/before12 models/default models/default:0.2,0.7
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from screwcam.detector import DETECTOR_FILE, VERIFIER_FILE, Detector, Verifier
from screwcam.training.detector import TEST_SEED, demo_scenes, read_entry
from screwcam.training.verifier import Candidates, _probabilities, evaluate, render_scenes


def load(spec: str) -> tuple[Path, Detector, Verifier, dict]:
    """(folder, detector alone, verifier, verifier entry) for DIR or DIR:HEAT,P."""
    path, _, override = spec.partition(":")
    d = Path(path)
    entry = read_entry(d)
    alone = {k: v for k, v in entry.items() if k != "verifier"}
    ver_entry = dict(entry["verifier"])
    if override:
        heat, p = (float(x) for x in override.split(","))
        ver_entry.update(detector_threshold=heat, threshold=p)
    det = Detector(d / DETECTOR_FILE, alone, 2)
    return d, det, Verifier(d / VERIFIER_FILE, ver_entry), ver_entry


def scenes(family: str, n: int):
    """(gray or BGR image, true boxes, drive types or None) of one family's test scenes,
    from SCENE_CACHE if set (rendered and stored there the first time)."""
    cache = os.environ.get("SCENE_CACHE")
    if not cache:
        yield from _render(family, n)
        return
    path = Path(cache) / f"scenes-{family}-{n}-{TEST_SEED}.pkl"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(list(_render(family, n)), f, protocol=5)
        tmp.replace(path)
    with path.open("rb") as f:
        yield from pickle.load(f)


def _f1(counts: np.ndarray) -> float:
    tp, fp, fn = (int(v) for v in counts)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def best_f1(c: Candidates, p: np.ndarray, ver_entry: dict) -> dict:
    """The best F1 (and its threshold) of the heat map alone and with the verifier."""
    heat = np.array(c.heat)
    alone = max((_f1(c.counts(heat >= t)), round(float(t), 2)) for t in np.arange(0.15, 0.71, 0.05))
    low = heat >= ver_entry["detector_threshold"]
    ver = max(
        (_f1(c.counts(low & (p >= t))), round(float(t), 2)) for t in np.arange(0.05, 0.96, 0.05)
    )
    return {"best_f1_alone": list(alone), "best_f1_verifier": list(ver)}


def _render(family: str, n: int):
    if family == "demo":
        images, boxes = demo_scenes(150)
        for image, truth in zip(images, boxes, strict=True):
            yield image, truth, None
        return
    for image, truth in render_scenes(family, n, TEST_SEED, chunk=50):
        yield image, [b for b, _ in truth], [int(k) for _, k in truth]


def main() -> None:
    out, families, n, specs = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4:]
    loaded = [load(s) for s in specs]
    result: dict = {"scenes": n, "seed": TEST_SEED, "detectors": {s: {} for s in specs}}
    for spec, (d, _, _, ver_entry) in zip(specs, loaded, strict=True):
        result["detectors"][spec]["trained_on"] = read_entry(d)["training"]["families"]
        result["detectors"][spec]["verifier_thresholds"] = [
            ver_entry["detector_threshold"],
            ver_entry["threshold"],
        ]
    for family in families:
        t0 = time.monotonic()
        cands = [Candidates() for _ in loaded]
        for image, truth, kinds in scenes(family, n):
            for c, (_, det, _, _) in zip(cands, loaded, strict=True):
                c.add_scene(det, image, truth, kinds)
        for spec, c, (_, det, ver, ver_entry) in zip(specs, cands, loaded, strict=True):
            p = _probabilities(ver, c.arrays()[0])
            row = evaluate(c, p, det.threshold, ver_entry) | best_f1(c, p, ver_entry)
            result["detectors"][spec][family] = row
            a, b = row["detector_alone"], row["with_verifier"]
            print(
                f"{spec} {family}: alone {a['recall']:.3f}/{a['precision']:.3f} "
                f"with verifier {b['recall']:.3f}/{b['precision']:.3f} "
                f"({a['heads']} heads, {time.monotonic() - t0:.0f} s)",
                flush=True,
            )
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
