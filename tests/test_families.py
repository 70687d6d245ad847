"""Families: the varied generators name every sample's families in the manifest,
batch-test reports accuracy per family value, and a leave-one-family-out run trains
without a family and tests on it, end to end on tiny data."""

from __future__ import annotations

import csv
import importlib.util
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from screwcam.cli import main
from screwcam.frames import Box
from screwcam.render import variety
from screwcam.render.families import KEYS, FamilyFilter, families_of, jitter_box, render_one

ROOT = Path(__file__).resolve().parents[1]

#: render2d puts real photos behind some heads: they come from scikit-image, part of the
#: [train] extra, not of the device set
needs_photos = pytest.mark.skipif(
    importlib.util.find_spec("skimage") is None,
    reason="needs scikit-image's photos: pip install 'screwcam[train]'",
)


def _synth(out: Path, per_class: int, *extra: str, seed: int = 1) -> int:
    args = ["synth", "--out", str(out), "--per-class", str(per_class), "--seed", str(seed)]
    return main([*args, "--jobs", "1", *extra])


def _manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_render2d_honours_overrides_and_names_its_families():
    rng = np.random.default_rng(3)
    image, box, info = variety.render_head(
        rng, 2, 96, style="countersunk", finish="rusty", light="dim", background="wood", view="top"
    )
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert (info["style"], info["finish"], info["light"], info["view"]) == (
        "countersunk",
        "rusty",
        "dim",
        "top",
    )
    assert 0 <= box.x and box.x + box.w <= 96 and 20 <= box.w <= 96
    with pytest.raises(ValueError, match="style for label 3"):
        variety.render_head(rng, 3, 96, style="pan")  # a hex head has no pan style
    with pytest.raises(TypeError, match="unknown overrides"):
        variety.render_head(rng, 0, 96, colour="red")


@needs_photos
def test_family_filter_keeps_families_in_and_out():
    rng = np.random.default_rng(0)
    only_dim = FamilyFilter.parse(only=["light=dim"], exclude=["finish=rusty"])
    for label in range(5):
        for _ in range(4):
            _, _, condition = render_one("render2d", rng, label, 64, only_dim)
            fams = families_of(condition)
            assert fams["light"] == "dim" and fams["finish"] != "rusty"
    # a hex head has no pan style: nothing to draw rather than a mislabelled family
    assert render_one("render2d", rng, 3, 64, FamilyFilter.parse(only=["style=pan"])) is None
    with pytest.raises(ValueError, match="unknown family"):
        FamilyFilter.parse(only=["colour=red"])


def test_jittered_boxes_stay_near_the_head():
    rng = np.random.default_rng(1)
    truth = Box(30, 40, 40, 36)
    boxes = [jitter_box(rng, truth, 112, 112) for _ in range(200)]
    ious = np.array([b.iou(truth) for b in boxes])
    assert ious.min() > 0.3 and 0.6 < np.median(ious) < 0.98  # imperfect, not wild


@needs_photos
def test_synth_records_families_in_the_manifest(tmp_path, capsys):
    out = tmp_path / "r2d"
    assert _synth(out, 6, "--generator", "render2d", "--exclude", "finish=rusty") == 0
    rows = _manifest(out)
    assert len(rows) == 30
    for row in rows:
        fams = families_of(row["condition"])
        assert list(fams) == [k for k in KEYS if k in fams] and set(fams) == set(KEYS)
        assert fams["gen"] == "render2d" and fams["finish"] != "rusty"
    assert "boxes jitter" in capsys.readouterr().err
    # a bad family is one clear line
    assert _synth(tmp_path / "bad", 2, "--generator", "render2d", "--only", "finish") == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_synth_mix_alternates_the_generators(tmp_path):
    pytest.importorskip("skimage")
    out = tmp_path / "mix"
    assert _synth(out, 4, "--generator", "mix", "--test-fraction", "1") == 0
    rows = _manifest(out)
    gens = Counter(families_of(r["condition"])["gen"] for r in rows)
    assert gens == {"render2d": 10, "render3d": 10}
    assert all(r["split"] == "test" for r in rows)


def test_synth_takes_a_list_of_generators_in_turn(tmp_path, capsys):
    pytest.importorskip("skimage")
    out = tmp_path / "list"
    assert _synth(out, 6, "--generator", "classic, sdf, render2d", "--test-fraction", "1") == 0
    rows = _manifest(out)
    gens = Counter(families_of(r["condition"])["gen"] for r in rows)
    assert gens == {"classic": 10, "sdf": 10, "render2d": 10}
    # the classic samples of a list still go round its lighting conditions
    lights = {families_of(r["condition"])["light"] for r in rows if "gen=classic" in r["condition"]}
    assert len(lights) == 2  # samples 0 and 3 of each class: conditions 0 and 1
    assert "generator classic,sdf,render2d" in capsys.readouterr().err


def test_the_classic_samples_of_a_filtered_mix_go_round_every_lighting_condition(tmp_path):
    pytest.importorskip("skimage")
    out = tmp_path / "filtered"
    args = ("--generator", "classic,render2d,sdf", "--exclude", "gen=sdf", "--test-fraction", "1")
    assert _synth(out, 12, *args) == 0
    rows = [r for r in _manifest(out) if "gen=classic" in r["condition"]]
    lights = Counter(families_of(r["condition"])["light"] for r in rows)
    assert len(rows) == 30 and set(lights.values()) == {5}  # 6 conditions x 5 classes


@pytest.mark.parametrize(
    ("spec", "message"),
    [("classic,nope", "unknown generator 'nope'"), ("sdf,sdf", "generator named twice")],
)
def test_a_bad_generator_list_is_refused_naming_the_problem(tmp_path, capsys, spec, message):
    with pytest.raises(SystemExit) as exc:
        _synth(tmp_path / "bad", 2, "--generator", spec)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@needs_photos
def test_batch_test_reports_accuracy_per_family(tmp_path, capsys):
    data = tmp_path / "set"
    assert _synth(data, 8, "--generator", "render2d", "--test-fraction", "1", seed=4) == 0
    report = tmp_path / "bt.json"
    assert (
        main(
            [
                "batch-test",
                "--model",
                str(ROOT / "models" / "default"),
                str(data / "X_test.npy"),
                "--json",
                str(report),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "finish" in text and "Pozidriv read as Phillips" in text
    doc = json.loads(report.read_text())
    assert doc["per_condition"] == {}  # replaced by the per-family table
    fams = doc["per_family"]
    assert set(fams) == set(KEYS)
    rows = _manifest(data)
    finishes = Counter(families_of(r["condition"])["finish"] for r in rows)
    assert {v: c["n"] for v, c in fams["finish"].items()} == dict(finishes)
    # each family's values partition the set: their hits add up to the overall accuracy
    for values in fams.values():
        hits = sum(round(c["accuracy"] * c["n"]) for c in values.values())
        assert hits == round(doc["accuracy"] * doc["n"])


@pytest.mark.slow
@needs_photos
def test_holdout_trains_without_a_family_and_tests_on_it(tmp_path, capsys):
    train_pool, test_pool = tmp_path / "train", tmp_path / "test"
    assert _synth(train_pool, 14, "--generator", "render2d", seed=1) == 0
    assert _synth(test_pool, 10, "--generator", "render2d", "--test-fraction", "1", seed=2) == 0
    out = tmp_path / "holdout"
    args = ["holdout", "--train", str(train_pool), "--test", str(test_pool)]
    assert main([*args, "--hold", "view=top", "--epochs", "1", "--out", str(out)]) == 0
    doc = json.loads((out / "holdout.json").read_text())
    (row,) = doc["rows"]
    test_rows = _manifest(test_pool)
    held = sum(families_of(r["condition"])["view"] == "top" for r in test_rows)
    assert row["hold"] == "view=top" and row["test_n"] == held
    assert set(row["per_family"]["view"]) == {"top"}  # tested only on the held-out family
    train_rows = _manifest(train_pool)
    kept = sum(families_of(r["condition"])["view"] != "top" for r in train_rows)
    assert row["train_n"] == kept
    assert "| view=top |" in (out / "holdout.md").read_text()
    # refuses to overwrite, and a family the test pool lacks is one clear line
    assert main([*args, "--hold", "view=top", "--epochs", "1", "--out", str(out)]) == 2
    assert main([*args, "--hold", "gen=render3d", "--out", str(tmp_path / "h2")]) == 2
    assert "no samples of gen=render3d" in capsys.readouterr().err


def test_training_summary_counts_each_family_value_not_each_combination():
    # meta.json records what a model was trained on; one count per combination of six
    # families made the default bundle's meta.json 1.1 MB
    from types import SimpleNamespace

    from screwcam.training.train import summarize

    conds = [
        "gen=render2d/finish=zinc/light=dim",
        "gen=render2d/finish=black/light=dim",
        "gen=render3d/finish=zinc/light=even",
    ]
    samples = SimpleNamespace(
        x=np.zeros((3, 28, 28), np.uint8), y=np.array([0, 1, 4]), conditions=np.array(conds)
    )
    doc = summarize(samples)
    assert doc["per_condition"] == {}
    assert doc["per_family"] == {
        "gen": {"render2d": 2, "render3d": 1},
        "finish": {"black": 1, "zinc": 2},
        "light": {"dim": 2, "even": 1},
    }
    assert doc["per_class"]["torx"] == 1 and doc["n"] == 3
    plain = summarize(SimpleNamespace(x=samples.x, y=samples.y, conditions=np.array(["dim"] * 3)))
    assert plain["per_condition"] == {"dim": 3} and plain["per_family"] == {}
