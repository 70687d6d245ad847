"""How the verifier's thresholds carry over to a family it never saw.

    python -P docs/notes/verifier/sweep.py /work/ver

For each leave-one-family-out folder DIR/without-X (a detector and its verifier trained
without X): the boxes its detector proposes on 150 validation scenes (seed 104729) of
every family, scored at every (heat, P(head)) pair. Recall/precision/F1 at IoU >= 0.5,
heads >= 24 px. Rows marked * are the family the pair never saw.
"""

import json
import sys
from pathlib import Path

import screwcam.training.verifier as tv
from screwcam.detector import Detector, Verifier
from screwcam.training.detector import VALIDATION_SEED
from screwcam.training.verifier import HEAT_CHOICES, P_CHOICES, mine

# `python -P sweep.py ROOT 0.1`: propose boxes from a lower heat than the recipe's 0.15
LOW = float(sys.argv[2]) if len(sys.argv) > 2 else tv.CANDIDATE_HEAT
tv.CANDIDATE_HEAT = LOW
HEATS = tuple(sorted({LOW, *(h for h in (0.1, 0.15) if h >= LOW), *HEAT_CHOICES}))

FAMILIES = ("render", "photo", "gen2")


def main(root: str) -> None:
    out = {}
    for held in FAMILIES:
        d = Path(root) / f"without-{held}"
        entry = json.loads((d / "detector.json").read_text())
        alone = {k: v for k, v in entry.items() if k != "verifier"}
        det = Detector(d / "detector.tflite", alone, 2)
        ver = Verifier(d / "verifier.tflite", entry["verifier"], 2)
        for fam in FAMILIES:
            c = mine(det, fam, 150, VALIDATION_SEED)
            crops, heat, _, _ = c.arrays()
            p = ver.predict_crops(crops)
            rows = {}
            base = c.counts(heat >= det.threshold)
            rows["alone"] = base.tolist()
            for h in HEATS:
                for t in (0.0, *P_CHOICES):
                    rows[f"{h}/{t}"] = c.counts((heat >= h) & (p >= t)).tolist()
            out[f"{held}:{fam}"] = rows

            def f(cnt):
                tp, fp, fn = cnt
                rec, pre = tp / max(1, tp + fn), tp / max(1, tp + fp)
                return f"r {rec:.3f} p {pre:.3f} F1 {2 * tp / max(1, 2 * tp + fp + fn):.3f}"

            mark = "*" if fam == held else " "
            chosen = f"{entry['verifier']['detector_threshold']}/{entry['verifier']['threshold']}"
            print(f"{mark} without {held}, on {fam}: alone {f(base)}")
            print(f"    chosen {chosen} {f(rows[chosen])}")
            for t in P_CHOICES:
                print(f"      heat {LOW} P>={t}: {f(rows[f'{LOW}/{t}'])}")
                own = rows.get(f"{det.threshold}/{t}", [0, 0, 0])
                print(f"      heat 0.2 P>={t}: {f(rows[f'0.2/{t}'])}")
                print(f"      heat {det.threshold} P>={t}: {f(own)}")
    Path(root, f"sweep-{LOW}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
