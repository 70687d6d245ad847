"""Can unlabeled crops of a new look fix the classifier? (session 6 probe)

    POOL=train-pool TEST=test-pool python -P unlabeled_probe.py MODEL.keras GEN adabn
    POOL=... TEST=... python -P unlabeled_probe.py MODEL.keras GEN selftrain [N] [THRESH] [ROUNDS]

MODEL was trained WITHOUT generator GEN (a `lofo_experiments.py` model). The unlabeled
crops are GEN's crops of the train pool (their labels unused), disjoint from the test
pool's GEN crops the model is scored on.
- adabn: every BatchNorm layer's mean/variance re-estimated, in order, on the unlabeled
  crops (AdaBN, Li et al. 2016);
- selftrain: the model labels the unlabeled crops; those with P >= THRESH (class-
  balanced: at most twice the rarest class), with as many labeled source crops, fine-tune
  it for 2 epochs (Adam 2e-4, random quarter turns); ROUNDS times.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np

from screwcam.training import holdout as H

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lofo_experiments  # noqa: E402, F401  (registers the experiments' custom layers)


def main() -> None:
    path, gen, mode = sys.argv[1:4]
    n_unl = int(sys.argv[4]) if len(sys.argv) > 4 else 4000
    thr = float(sys.argv[5]) if len(sys.argv) > 5 else 0.9
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    model = keras.models.load_model(path, compile=False, safe_mode=False)
    train = H._load_pool(os.environ.get("POOL", "build/default-model/synth-train"))
    test = H._load_pool(os.environ.get("TEST", "build/default-model/heldout-families"))
    rng = np.random.default_rng(0)
    is_t = H._has(train.conditions, "gen", gen)
    tgt = train.x[rng.choice(np.flatnonzero(is_t), min(n_unl, int(is_t.sum())), replace=False)]
    held = H._has(test.conditions, "gen", gen)

    def f(x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32)[..., None]

    def report(tag: str) -> None:
        def acc(mask: np.ndarray) -> float:
            p = model.predict(f(test.x[mask]), batch_size=512, verbose=0)
            return float((p.argmax(1) == test.y[mask]).mean()) * 100

        print(f"{tag}: held-out {gen} {acc(held):.1f} %, other generators {acc(~held):.1f} %")

    report("before")
    if mode == "adabn":
        for layer in [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]:
            a = keras.Model(model.inputs, layer.input).predict(f(tgt), batch_size=512, verbose=0)
            axes = tuple(range(a.ndim - 1))
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, a.mean(axes), a.var(axes)])
        report(f"AdaBN on {len(tgt)} unlabeled crops")
        return
    src = np.flatnonzero(~is_t)
    model.compile(keras.optimizers.Adam(2e-4), "sparse_categorical_crossentropy")
    for r in range(rounds):
        p = model.predict(f(tgt), batch_size=512, verbose=0)
        conf, lab = p.max(1), p.argmax(1)
        keep = conf >= thr
        counts = np.bincount(lab[keep], minlength=5)
        cap = max(1, 2 * int(counts[counts > 0].min())) if keep.any() else 1
        sel = np.concatenate([np.flatnonzero(keep & (lab == c))[:cap] for c in range(5)])
        s = rng.choice(src, len(sel), replace=False)
        x = np.concatenate([tgt[sel], train.x[s]])
        y = np.concatenate([lab[sel], train.y[s]])
        turns = rng.integers(0, 4, len(x))
        x = np.stack([np.rot90(a, int(t)) for a, t in zip(x, turns, strict=True)])
        model.fit(f(x), y, batch_size=64, epochs=2, verbose=0, shuffle=True)
        report(f"round {r + 1} ({int(keep.sum())} confident, {len(sel)} used)")


if __name__ == "__main__":
    main()
