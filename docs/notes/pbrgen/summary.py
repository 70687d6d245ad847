"""Tables of pbr_experiment.py's results: per run accuracy on each test set, and the
paired differences B - A (pbr as the third generator) and S - A (sdf as the third) on the
same test crops, per held-out generator and seed, with McNemar's discordant counts.

    python -P docs/notes/pbrgen/summary.py docs/notes/pbrgen/results.json
"""

import json
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    path = Path(sys.argv[1])
    doc = json.loads(path.read_text())
    preds = np.load(path.with_name(path.stem + "_preds.npz"))
    rows = {(r["variant"], r["hold"], r["seed"]): r for r in doc["rows"]}
    print("| run | render3d | render2d | pbr | Pozidriv as Phillips (held out) | train s |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in sorted(rows):
        r = rows[key]
        acc = {k: 100 * v["accuracy"] for k, v in r["scores"].items()}
        held = r["hold"] if r["hold"] in r["scores"] else "pbr"
        poz = r["scores"][held]["pozidriv_as_phillips"]
        print(
            f"| {':'.join(map(str, key))} | {acc['render3d']:.1f} % | {acc['render2d']:.1f} % "
            f"| {acc['pbr']:.1f} % | {poz[0]} / {poz[1]} | {r['train_seconds']:.0f} |"
        )
    print()
    print(
        "| paired on the held-out crops | seed | A | third | difference | A only right | "
        "third only right |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for third in ("B", "F", "S", "Q"):
        for hold in ("render3d", "render2d"):
            for seed in (0, 1, 2):
                if (third, hold, seed) not in rows or ("A", hold, seed) not in rows:
                    continue
                a = preds[f"A_{hold}_s{seed}_{hold}"]
                b = preds[f"{third}_{hold}_s{seed}_{hold}"]
                y = preds[f"A_{hold}_s{seed}_{hold}_y"]
                ra, rb = a == y, b == y
                name = {
                    "B": "pbr",
                    "F": "pbr without tiny/dim/overexposed",
                    "S": "sdf",
                    "Q": "sdf + pbr (a quarter each)",
                }[third]
                print(
                    f"| {hold} held out, third = {name} | {seed} | {100 * ra.mean():.1f} % | "
                    f"{100 * rb.mean():.1f} % | {100 * (rb.mean() - ra.mean()):+.1f} | "
                    f"{int((ra & ~rb).sum())} | {int((rb & ~ra).sum())} |"
                )


if __name__ == "__main__":
    main()
