"""`screwcam scene-test`: the whole pipeline graded on scenes with known heads. The
counting is checked on scenes whose answers we wrote by hand; the command runs the real
bundle (detector and classifier on LiteRT) on the demo camera's frames."""

from __future__ import annotations

import json

import pytest
from _service_helpers import model_dir

from screwcam.bench.scene_test import Tally
from screwcam.classes import CLASSES
from screwcam.cli import main
from screwcam.frames import Box

HEX_SOCKET, PHILLIPS, POZIDRIV, TORX = 0, 1, 2, 4


def test_counts_found_named_and_false_boxes_by_hand():
    tally = Tally()
    truth = [
        (Box(0, 0, 40, 40), POZIDRIV),  # boxed, named Phillips
        (Box(100, 0, 40, 40), TORX),  # boxed, named right
        (Box(200, 0, 40, 40), HEX_SOCKET),  # missed
        (Box(300, 0, 10, 10), TORX),  # too small to count: neither miss nor false box
    ]
    heads = [
        (Box(2, 2, 40, 40), "philips"),
        (Box(101, 0, 38, 40), "torx"),
        (Box(100, 2, 40, 38), "torx"),  # a second box on the same head: a false box
        (Box(300, 0, 10, 10), "torx"),  # on the small head: not counted
        (Box(400, 400, 30, 30), "unknown"),  # on nothing
    ]
    tally.add(heads, truth, min_side=24)
    r = tally.result()
    assert (r["heads"], r["boxes"], r["false_boxes"], r["boxes_on_nothing"]) == (3, 4, 2, 1)
    assert r["recall"] == round(2 / 3, 4) and r["precision"] == 0.5
    assert r["labels_right"] == round(1 / 3, 4) and r["label_accuracy_found"] == 0.5
    assert r["f1_labelled"] == round(2 * 1 / (4 + 3), 4)
    assert r["pozidriv_as_phillips"] == [1, 1]
    assert r["confusion"][POZIDRIV][PHILLIPS] == 1 and r["confusion"][TORX][TORX] == 1
    # a head found but below the confidence threshold is found, and named wrong
    tally.add([(Box(0, 0, 40, 40), "unknown")], [(Box(0, 0, 40, 40), TORX)], min_side=24)
    r = tally.result()
    assert r["confusion"][TORX][len(CLASSES)] == 1 and r["recall"] == 0.75


def test_the_shipped_bundle_finds_and_names_the_demo_heads(tmp_path, capsys):
    out = tmp_path / "scenes.json"
    args = ["scene-test", "--model", str(model_dir()), "--family", "demo", "--scenes", "20"]
    assert main([*args, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| demo (20) |" in table
    doc = json.loads(out.read_text())
    demo = doc["families"]["demo"]
    assert demo["scenes"] == 20 and demo["heads"] == 100  # 5 heads in every demo frame
    # the demo's look is one the detector and the classifier trained on
    assert demo["recall"] >= 0.97 and demo["f1_labelled"] >= 0.95, demo
    assert doc["finder"] == "the bundle's detector with its box regressor and its verifier"
    assert doc["seen"] == {"demo": {"detector": True, "classifier": True}}
    before = out.read_text()
    assert main([*args, "--json", str(out)]) == 2  # nothing overwritten without asking
    assert "exists; pass --force" in capsys.readouterr().err and out.read_text() == before
    # without the verifier, to compare: the same heads, and the run says which finder it was
    alone = tmp_path / "alone.json"
    assert main([*args, "--no-verifier", "--json", str(alone)]) == 0
    doc = json.loads(alone.read_text())
    assert doc["finder"] == "the bundle's detector with its box regressor, its verifier off"
    assert doc["families"]["demo"]["recall"] >= 0.97, doc


def test_the_classical_finder_can_be_graded_side_by_side(capsys):
    args = ["scene-test", "--model", str(model_dir()), "--family", "demo", "--scenes", "6"]
    assert main([*args, "--classical"]) == 0
    assert "with the classical finder" in capsys.readouterr().out


def test_a_folder_without_a_detector_is_refused(tmp_path, capsys):
    args = ["scene-test", "--family", "demo", "--scenes", "2", "--detector", str(tmp_path)]
    assert main(args) == 2
    assert "holds no trained detector" in capsys.readouterr().err


def test_the_card_says_which_part_trained_on_each_family():
    # the shipped detector trained on render, photo and gen2 scenes, the classifier on
    # classic, render2d, render3d and sdf crops: sdf scenes are new to the detector only,
    # pbr scenes to both (the held-out row)
    from screwcam.bench.scene_test import seen_in_training, seen_sentence

    det, gens = ["render", "photo", "gen2"], ["classic", "render2d", "render3d", "sdf"]
    seen = {f: seen_in_training(f, det, gens) for f in ("render", "demo", "sdf", "pbr")}
    assert seen["demo"] == {"detector": True, "classifier": True}
    assert seen["sdf"] == {"detector": False, "classifier": True}
    assert seen["pbr"] == {"detector": False, "classifier": False}
    text = seen_sentence({"seen": seen})
    assert "render, demo: the detector and the classifier both trained on" in text
    assert "pbr: **neither part trained on (held out)**" in text
    assert seen_in_training("pbr", None, gens)["detector"] is None  # classical finder


def test_large_scenes_are_searched_in_windows_as_detect_does(tmp_path, capsys):
    # head sizes run from 7 px to 0.4 of the height, so at 2016x1512 many are small:
    # the run says what it measured, and windows find more of them than one look
    args = ["scene-test", "--model", str(model_dir()), "--family", "render", "--scenes", "6"]
    args += ["--size", "2016x1512"]
    recall = {}
    for name, extra in (("whole", []), ("windows", ["--tile-scale", "0.5"])):
        out = tmp_path / f"{name}.json"
        assert main([*args, *extra, "--json", str(out)]) == 0
        doc = json.loads(out.read_text())
        assert doc["frame"] == [2016, 1512]
        recall[name] = doc["families"]["render"]["recall"]
    assert doc["tile_scale"] == 0.5 and "in windows down to scale 0.5" in doc["finder"]
    assert "in 2016x1512 scenes" in capsys.readouterr().out
    assert recall["windows"] > recall["whole"], recall
    # the demo camera renders 640x480 only; a size is WIDTHxHEIGHT
    assert main(["scene-test", "--family", "demo", "--size", "2016x1512"]) == 2
    assert "always 640x480" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["scene-test", "--size", "1280"])
