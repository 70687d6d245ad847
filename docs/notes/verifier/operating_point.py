"""Where should each verifier cut? Rules for P(head), scored on generators never trained on.

    SCENE_CACHE=DIR .venv/bin/python -P docs/notes/verifier/operating_point.py OUT.json DIR...
    .venv/bin/python -P docs/notes/verifier/operating_point.py summary OUT.json

A verifier's P(head) scale moves between training draws (docs/notes/detector.md, session
14), so the recipe's fixed P >= 0.5 puts each retrained verifier at a different operating
point. For every detector folder (detector + its verifier) this computes the P(head) cut
of several rules from the folder's *validation* scenes only (100 scenes of each family it
was trained on, `train-verifier`'s VALIDATION_SEED; the heat threshold stays 0.2):

- fixed: 0.5 (the recipe today);
- f1: the cut with the best box F1 on the validation scenes (0.05 steps);
- keep R: the cut that keeps the fraction R of the validation boxes that lie on a head
  (IoU >= 0.5) among those the heat map proposes at >= 0.2, i.e. a fixed recall of the
  verifier on the families it knows, whatever its P scale;

each but the first capped so that the verifier drops none of the demo heads the heat map
found (the tests need all of them; session 12); DEMO_CAP=0 leaves them uncapped.
Then every rule's cut is scored on the 150 test scenes of each family (`SCENE_CACHE`
pickles of detector-sdf/evaluate.py) and on the demo: recall, precision and F1 at IoU >=
0.5, heads >= 24 px. No TensorFlow: LiteRT only.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detector-sdf"))
import evaluate as ev  # noqa: E402  (docs/notes/detector-sdf/evaluate.py)

from screwcam.training.detector import VALIDATION_SEED, read_entry  # noqa: E402
from screwcam.training.verifier import (  # noqa: E402
    Candidates,
    _probabilities,
    render_scenes,
    validation_f1,
)

TEST_FAMILIES = ("sdf", "pbr", "gen2", "photo", "render")
KEEP = (0.85, 0.90, 0.93, 0.95, 0.97)
HEAT = 0.2
GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


def validation_scenes(family: str, n: int = 100):
    cache = Path(os.environ["SCENE_CACHE"]) / f"val-{family}-{n}-{VALIDATION_SEED}.pkl"
    if not cache.is_file():
        data = [
            (img, [b for b, _ in t], [int(k) for _, k in t])
            for img, t in render_scenes(family, n, VALIDATION_SEED, chunk=50)
        ]
        tmp = cache.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(data, f, protocol=5)
        tmp.replace(cache)
    with cache.open("rb") as f:
        return pickle.load(f)


def score(c: Candidates, p: np.ndarray, cut: float) -> dict:
    tp, fp, fn = (int(v) for v in c.counts((np.array(c.heat) >= HEAT) & (p >= cut)))
    return {
        "recall": round(tp / max(1, tp + fn), 4),
        "precision": round(tp / max(1, tp + fp), 4),
        "f1": round(2 * tp / max(1, 2 * tp + fp + fn), 4),
    }


def candidates(det, ver, scenes) -> tuple[Candidates, np.ndarray]:
    c = Candidates()
    for image, truth, kinds in scenes:
        c.add_scene(det, image, truth, kinds)
    return c, _probabilities(ver, c.arrays()[0])


def rules(val: list[tuple[Candidates, np.ndarray]], demo_cap: float) -> dict[str, float]:
    """Each rule's P(head) cut from the validation candidates, capped by the demo."""
    out = {"fixed 0.5": 0.5}
    out["f1"] = float(max(GRID, key=lambda t: (validation_f1(val, HEAT, t), -t)))
    heads = np.concatenate(
        [p[(np.array(c.label) == 1) & (np.array(c.heat) >= HEAT)] for c, p in val]
    )
    for r in KEEP:
        # keep the fraction r of the head boxes: cut at their (1 - r) quantile
        out[f"keep {r:.2f}"] = float(np.quantile(heads, 1 - r))
    return {k: v if k == "fixed 0.5" else min(v, demo_cap) for k, v in out.items()}


def summary(path: str) -> None:
    """Per rule, over the distinct verifiers in a result: mean F1 on the families each
    never trained on (sdf, pbr and a leave-one-out detector's held-out family), mean F1
    on the held-out family alone, the lowest demo recall."""
    result = json.loads(Path(path).read_text())
    folders = result["folders"]
    distinct = [r for k, r in folders.items() if not any(d in k for d in DUPLICATES)]
    for rule in [*distinct[0]["cuts"], "best"]:
        unseen, held, demo = [], [], []
        for row in distinct:
            fams = [
                "sdf",
                "pbr",
                *(f for f in ("render", "photo", "gen2") if f not in row["trained_on"]),
            ]
            unseen.append(np.mean([row[f][rule]["f1"] for f in fams]))
            if len(fams) == 3:
                held.append(row[fams[2]][rule]["f1"])
            if rule != "best":
                demo.append(row["demo"][rule]["recall"])
        print(
            f"{rule:10s} unseen F1 {np.mean(unseen):.3f}, held-out family F1 {np.mean(held):.3f}, "
            f"lowest demo recall {min(demo, default=float('nan')):.3f} ({len(distinct)} verifiers)"
        )


# session 14's seed-20 leave-gen2-out and leave-photo-out folders hold the recipe's
# build/default-detector/without-gen2 and without-photo (the same files): counted once
DUPLICATES = ("base-without-gen2-s20", "base-without-photo-s20")


def main() -> None:
    if sys.argv[1] == "summary":
        summary(sys.argv[2])
        return
    out, folders = Path(sys.argv[1]), sys.argv[2:]
    result: dict = {"heat": HEAT, "keep": KEEP, "folders": {}}
    test = {f: list(ev.scenes(f, 150)) for f in (*TEST_FAMILIES, "demo")}
    val_cache: dict[str, list] = {}
    for folder in folders:
        t0 = time.monotonic()
        d, det, ver, _ = ev.load(folder)
        trained = read_entry(d)["training"]["families"]
        for f in trained:
            val_cache.setdefault(f, validation_scenes(f))
        val = [candidates(det, ver, val_cache[f]) for f in trained]
        demo_c, demo_p = candidates(det, ver, test["demo"])
        # the highest cut on the grid at which the verifier drops none of the demo heads
        # the heat map found
        found = score(demo_c, demo_p, 0.0)["recall"]
        demo_cap = max(t for t in (0.0, *GRID) if score(demo_c, demo_p, t)["recall"] >= found)
        # DEMO_CAP=0: the rules uncapped (to see what the cap itself costs)
        cuts = rules(val, float(demo_cap) if os.environ.get("DEMO_CAP", "1") != "0" else 1.0)
        row: dict = {"trained_on": trained, "demo_cap": float(demo_cap), "cuts": cuts}
        for family in TEST_FAMILIES:
            c, p = candidates(det, ver, test[family])
            row[family] = {name: score(c, p, cut) for name, cut in cuts.items()}
            row[family]["best"] = max(
                ({"cut": float(t)} | score(c, p, t) for t in GRID), key=lambda s: s["f1"]
            )
        row["demo"] = {name: score(demo_c, demo_p, cut) for name, cut in cuts.items()}
        result["folders"][folder] = row
        print(
            f"{folder} ({time.monotonic() - t0:.0f} s): "
            + ", ".join(f"{k} {v:.3f}" for k, v in cuts.items()),
            flush=True,
        )
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(out)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
