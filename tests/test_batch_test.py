"""`screwcam batch-test` on the real default bundle: numbers checked against a set
whose answers we fixed by hand, the HTML report, refusal of a bad bundle, and
that it runs without TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from _service_helpers import model_dir

from screwcam.classes import CLASSES
from screwcam.classifier import Classifier
from screwcam.cli import main
from screwcam.dataset import load_samples
from screwcam.preprocess import preprocess

DEFAULT = model_dir()  # the bundle shipped with screwcam
TORX, PHILIPS, HEX_HEAD = CLASSES.index("torx"), CLASSES.index("philips"), 3


@pytest.fixture(scope="module")
def known_set(tmp_path_factory) -> Path:
    """A folder tree whose confusion matrix we know in advance.

    Rendered heads are written as PNGs to a pool; the default model classifies the
    pool (the same load path batch-test uses) and we keep only images it calls
    torx or hex head with >= 90 % confidence. Then we file them by hand:
      even/torx/      3 images the model calls torx      -> 3 right
      even/philips/   2 images the model calls torx      -> 2 wrong (philips -> torx)
      dim/sechskant/  2 images the model calls hex head  -> 2 right
    """
    from screwcam.render import render_sample

    base = tmp_path_factory.mktemp("known")
    pool = base / "pool" / "torx"  # folder name = a class; the real class is irrelevant here
    pool.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(12):
        label = (TORX, HEX_HEAD)[i % 2]
        image, box = render_sample(rng, label, "even")
        cv2.imwrite(str(pool / f"{i:02d}.png"), preprocess(image, box.as_list()))
    samples = load_samples([base / "pool"])
    probs = Classifier(DEFAULT).classify(samples.x)
    pred, conf = probs.argmax(1), probs.max(1)
    sure = {
        c: [samples.paths[i] for i in range(len(pred)) if pred[i] == c and conf[i] >= 0.9]
        for c in (TORX, HEX_HEAD)
    }
    assert len(sure[TORX]) >= 5 and len(sure[HEX_HEAD]) >= 2, "default model too unsure"
    root = base / "set"
    plan = [
        ("even/torx", sure[TORX][:3]),
        ("even/philips", sure[TORX][3:5]),
        ("dim/sechskant", sure[HEX_HEAD][:2]),
    ]
    for folder, files in plan:
        (root / folder).mkdir(parents=True)
        for k, f in enumerate(files):
            (root / folder / f"{k}.png").write_bytes(Path(f).read_bytes())
    return root


def test_json_matches_hand_checked_numbers(known_set: Path, tmp_path: Path, capsys):
    out, report = tmp_path / "r.json", tmp_path / "r.html"
    code = main(
        [
            "batch-test",
            "--model",
            str(DEFAULT),
            str(known_set),
            "--json",
            str(out),
            "--report",
            str(report),
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    expected = np.zeros((5, 5), int)
    expected[TORX, TORX] = 3
    expected[PHILIPS, TORX] = 2
    expected[HEX_HEAD, HEX_HEAD] = 2
    assert doc["confusion"] == expected.tolist()
    assert doc["n"] == 7
    assert doc["accuracy"] == pytest.approx(5 / 7, abs=1e-5)
    assert doc["classes"] == list(CLASSES)
    assert doc["per_class"]["torx"]["precision"] == pytest.approx(3 / 5, abs=1e-5)
    assert doc["per_class"]["torx"]["recall"] == pytest.approx(1.0)
    assert doc["per_class"]["torx"]["f1"] == pytest.approx(0.75, abs=1e-5)
    assert doc["per_class"]["philips"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 2}
    assert doc["per_class"]["sechskant"]["n"] == 2
    assert doc["per_condition"] == {
        "dim": {"accuracy": 1.0, "n": 2},
        "even": {"accuracy": 0.6, "n": 5},
    }
    assert len(doc["mistakes"]) == 2
    assert {m["true"] for m in doc["mistakes"]} == {PHILIPS}
    text = capsys.readouterr().out
    assert "overall accuracy: 71.43%" in text and "Phillips" in text and "hex head" in text

    page = report.read_text()
    assert page.count("<figure>") == 2
    assert "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "<link" not in page


def test_views_are_recorded_and_classify_every_turned_view(known_set: Path, tmp_path: Path):
    out = tmp_path / "views.json"
    assert main(["batch-test", "--model", str(DEFAULT), str(known_set), "--views", "8",
                 "--json", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["views"] == 8 and doc["n"] == 7
    # the same answers as averaging the classifier over the 8 views by hand
    samples = load_samples([known_set])
    by_hand = Classifier(DEFAULT, views=8).classify(samples.x).argmax(axis=1)
    assert doc["accuracy"] == round(float((by_hand == samples.y).mean()), 6)


def test_refuses_existing_output_without_force(known_set: Path, tmp_path: Path, capsys):
    out = tmp_path / "r.json"
    out.write_text("keep me")
    assert main(["batch-test", "--model", str(DEFAULT), str(known_set), "--json", str(out)]) == 2
    assert out.read_text() == "keep me"
    assert "--force" in capsys.readouterr().err


def test_mismatched_bundle_refused(known_set: Path, tmp_path: Path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("model.tflite", "meta.json"):
        (bad / name).write_bytes((DEFAULT / name).read_bytes())
    (bad / "labels.txt").write_text("\n".join(reversed(CLASSES)) + "\n")
    assert main(["batch-test", "--model", str(bad), str(known_set)]) == 2
    err = capsys.readouterr().err
    assert "labels.txt" in err and "re-export" in err


def test_runs_without_tensorflow(known_set: Path, tmp_path: Path):
    code = f"""
import sys
from screwcam.cli import main
rc = main(["batch-test", "--model", {str(DEFAULT)!r}, {str(known_set)!r},
           "--json", {str(tmp_path / "x.json")!r}])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print("HEAVY", heavy)
sys.exit(rc if not heavy else 3)
"""
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-P", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "HEAVY []" in proc.stdout
