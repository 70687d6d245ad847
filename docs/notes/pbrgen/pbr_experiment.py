"""Does a fourth, independently made generator (pbr, path-traced by Mitsuba 3) lift
accuracy on a generator the model never saw? Leave-one-generator-out with equal training
crops per class, modelled on docs/notes/sdfgen/sdf_experiment.py (same pools, same
training, same test crops, so the A rows are comparable with that experiment's).

    POOL=synth-train TEST=heldout-families PBR=pbr-train PBRTEST=pbr-test \\
      [SDF=sdf-train] [PBREASY=pbr-easy] python -P pbr_experiment.py OUT.json RUN [RUN ...]

RUN = VARIANT:HOLD:SEED, e.g. A:render3d:0, B:render2d:1.
- A: classic + the other varied generator, 1000 + 1000 per class (what
  `screwcam holdout --max-per-class 2000` trains on);
- B: classic + the other varied generator + pbr, 667 + 667 + 666 per class;
- F: as B, the third from PBREASY: pbr without its hardest families (rendered with
  `--exclude view=tiny --exclude light=dim --exclude light=overexposed`);
- S: classic + the other varied generator + sdf, 667 + 667 + 666 per class (the sdf
  experiment's B, for a side-by-side on the same seeds; needs SDF);
- Q: classic + the other varied generator + sdf + pbr, 500 each per class (needs SDF);
- D: classic + pbr, 1000 + 1000 per class (HOLD "both": render2d and render3d unseen;
  needs 1000 per class in PBR).
Every model: `edge` preset, 8 epochs, Keras float model, `screwcam.training.train.train`
(validation = 10 % of its own training crops), scored on the test pool's render2d and
render3d crops (1000 each) and on the pbr test crops (1000). Results are appended to
OUT.json after each model (per-crop predictions in OUT_preds.npz).
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from screwcam.render.families import families_of
from screwcam.training import holdout as H
from screwcam.training import train as T
from screwcam.training.report import evaluate, pozidriv_as_phillips

EPOCHS = int(os.environ.get("EPOCHS", 8))  # smaller only for smoke tests
TOTAL = int(os.environ.get("TOTAL", 2000))  # training crops per class in every variant


def first_per_class(pool, mask: np.ndarray, n: int):
    """The first n crops of each class among mask (pool order), as a subset; refuses a
    pool with fewer (a smaller third would not be a fair comparison)."""
    keep = np.zeros(len(pool.y), bool)
    for c in range(5):
        idx = np.flatnonzero(mask & (pool.y == c))
        if len(idx) < n:
            raise SystemExit(f"class {c}: {len(idx)} crops in the pool, {n} needed")
        keep[idx[:n]] = True
    return H._subset(pool, keep)


def training_set(variant: str, hold: str, pool, extra: dict):
    from screwcam.dataset import Samples

    everything = np.ones(len(pool.y), bool)
    classic = H._has(pool.conditions, "gen", "classic")
    if variant == "D":
        half = TOTAL // 2
        pbr = extra["pbr"]
        return Samples.concat(
            [
                first_per_class(pool, classic, half),
                first_per_class(pbr, np.ones(len(pbr.y), bool), TOTAL - half),
            ]
        )
    if variant == "A":
        return first_per_class(pool, everything & ~H._has(pool.conditions, "gen", hold), TOTAL)
    other = {"render3d": "render2d", "render2d": "render3d"}[hold]
    varied = H._has(pool.conditions, "gen", other)
    if variant == "Q":
        quarter = TOTAL // 4
        return Samples.concat(
            [first_per_class(pool, classic, quarter), first_per_class(pool, varied, quarter)]
            + [
                first_per_class(p, np.ones(len(p.y), bool), quarter)
                for p in (extra["sdf"], extra["pbr"])
            ]
        )
    third_pool = extra[{"B": "pbr", "F": "pbr_easy", "S": "sdf"}[variant]]
    third = TOTAL // 3 + 1  # 667 + 667 + 666
    return Samples.concat(
        [
            first_per_class(pool, classic, third),
            first_per_class(pool, varied, third),
            first_per_class(third_pool, np.ones(len(third_pool.y), bool), TOTAL - 2 * third),
        ]
    )


def score(model, samples, preds: dict, tag: str) -> dict:
    probs = model.predict(samples.x.astype(np.float32)[..., None], batch_size=512, verbose=0)
    pred = probs.argmax(axis=1)
    preds[tag] = pred.astype(np.int8)
    preds[tag + "_y"] = samples.y.astype(np.int8)
    res = evaluate(samples.y, pred, samples.conditions)
    return {
        "accuracy": res["accuracy"],
        "n": res["n"],
        "pozidriv_as_phillips": list(pozidriv_as_phillips(res)),
        "confusion": res["confusion"],
        "per_family": res["per_family"],
    }


def main() -> None:
    out = Path(sys.argv[1])
    runs = [r.split(":") for r in sys.argv[2:]]
    pool = H._load_pool(os.environ["POOL"])
    test = H._load_pool(os.environ["TEST"])
    extra = {"pbr": H._load_pool(os.environ["PBR"])}
    if os.environ.get("SDF"):
        extra["sdf"] = H._load_pool(os.environ["SDF"])
    if os.environ.get("PBREASY"):
        extra["pbr_easy"] = H._load_pool(os.environ["PBREASY"])
    tests = {
        "render3d": H._subset(test, H._has(test.conditions, "gen", "render3d")),
        "render2d": H._subset(test, H._has(test.conditions, "gen", "render2d")),
        "pbr": H._load_pool(os.environ["PBRTEST"]),
    }
    doc = json.loads(out.read_text()) if out.exists() else {"epochs": EPOCHS, "rows": []}
    preds_path = out.with_name(out.stem + "_preds.npz")
    preds = dict(np.load(preds_path)) if preds_path.exists() else {}
    for variant, hold, seed in runs:
        tr = training_set(variant, hold, pool, extra)
        gens: dict[str, int] = {}
        for c in tr.conditions:
            g = families_of(str(c)).get("gen", "?")
            gens[g] = gens.get(g, 0) + 1
        print(f"{variant}:{hold}:{seed}: training on {len(tr.y)} crops {gens}", flush=True)
        t0 = time.perf_counter()
        model, metrics = T.train(
            tr, tests["pbr"], preset="edge", epochs=EPOCHS, seed=int(seed), progress=lambda m: None
        )
        seconds = time.perf_counter() - t0
        tag = f"{variant}_{hold}_s{seed}"
        row = {
            "variant": variant,
            "hold": hold,
            "seed": int(seed),
            "train_n": int(len(tr.y)),
            "train_gens": gens,
            "train_seconds": round(seconds, 1),
            "epochs_run": metrics["epochs"],
            "scores": {name: score(model, s, preds, f"{tag}_{name}") for name, s in tests.items()},
        }
        doc["rows"] = [
            r
            for r in doc["rows"]
            if (r["variant"], r["hold"], r["seed"]) != (variant, hold, int(seed))
        ] + [row]
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        os.replace(tmp, out)
        np.savez_compressed(preds_path, **preds)
        acc = {k: round(v["accuracy"] * 100, 1) for k, v in row["scores"].items()}
        print(f"{tag}: {acc} ({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
