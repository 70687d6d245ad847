"""On-device adaptation (`screwcam.adapt`, `screwcam adapt`): the real LiteRT interpreter
on the shipped bundle, examples of a synthetic style the base model never saw (the
renderer's heads through a motion blur), the adapted bundle through the same loader
and classifier as the service; bad example folders fail clearly and write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from _service_helpers import model_dir

from screwcam.adapt import Adapter, adapt_bundle, fit_adapter
from screwcam.bench.adapt_bench import styled_set
from screwcam.bundle import read_bundle
from screwcam.classes import CLASSES
from screwcam.classifier import Classifier, load_bundle
from screwcam.cli import main
from screwcam.errors import DatasetError, ModelError


@pytest.fixture(scope="module")
def base() -> Path:
    bundle = read_bundle(model_dir())
    if bundle.meta.embedding is None:
        pytest.fail(f"{bundle.path} has no embedding output; re-export it (`screwcam export`)")
    return bundle.path


@pytest.fixture(scope="module")
def motion() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """10 examples per class to teach with, and 60 per class of the same style to test."""
    x_teach, y_teach = styled_set("motion", 10, seed=11)
    x_test, y_test = styled_set("motion", 60, seed=12)
    return x_teach, y_teach, x_test, y_test


def _accuracy(bundle: Path, x: np.ndarray, y: np.ndarray) -> float:
    return float((Classifier(bundle).classify(x).argmax(1) == y).mean())


def test_adapting_to_an_unseen_style_raises_accuracy(base: Path, motion, tmp_path: Path):
    x_teach, y_teach, x_test, y_test = motion
    out = tmp_path / "adapted"
    adapt_bundle(base, x_teach, y_teach, out)
    before = _accuracy(base, x_test, y_test)
    after = _accuracy(out, x_test, y_test)
    print(f"motion style, 10 examples/class: base {before:.3f} -> adapted {after:.3f}")
    # it closes at least a third of the gap to 100 % (a base model trained on more
    # variety is already good at it: 0.893 -> 0.933 for the default of this version)
    assert after - before >= (1.0 - before) / 3, (before, after)
    # the adapted model is a normal bundle: validated, labels unchanged, adapter applied
    bundle = load_bundle(out)
    assert bundle.labels == tuple(CLASSES)
    assert bundle.part("adapter") is not None and bundle.part("examples") is not None
    meta = json.loads((out / "meta.json").read_text())
    metrics = meta["parts"]["adapter"]["metrics"]
    assert metrics["examples"] == dict.fromkeys(CLASSES, 10) and metrics["n"] == 50
    assert 0 <= metrics["heldout_accuracy"] <= 1 and metrics["method"] == "polar"
    # the examples are stored in the bundle, readable by the dataset loader
    assert (np.load(out / "X_examples.npy") == x_teach).all()
    # the base model's own style is not forgotten
    x_base, y_base = styled_set("base", 20, seed=13)
    assert _accuracy(out, x_base, y_base) >= _accuracy(base, x_base, y_base) - 0.05


def test_teaching_some_classes_keeps_the_others(base: Path, motion):
    """Teach only Phillips and Pozidriv (the pair the motion blur confuses most): the
    untaught classes stay as good as the base model on its own style (anchors from the
    export stand in for them), and without anchors the head leaves them untouched."""
    from screwcam.adapt import BaseHead, read_base_head

    x_teach, y_teach, x_test, y_test = motion
    classifier = Classifier(base)
    head = read_base_head(read_bundle(base))
    assert head is not None and head.anchors is not None
    keep = np.isin(y_teach, (1, 2))
    emb_teach = classifier.embed(x_teach[keep])
    adapter = fit_adapter(emb_teach, y_teach[keep], 5, "polar", head, x_teach[keep])
    x_base, y_base = styled_set("base", 20, seed=14)
    probs, emb = classifier.classify_and_embed(x_base)
    others = ~np.isin(y_base, (1, 2))
    base_acc = (probs.argmax(1) == y_base)[others].mean()
    adapted_acc = (adapter.apply(emb, probs, x_base).argmax(1) == y_base)[others].mean()
    assert adapted_acc >= base_acc - 0.05, (base_acc, adapted_acc)
    tp, te = classifier.classify_and_embed(x_test)
    taught = np.isin(y_test, (1, 2))
    before = (tp.argmax(1) == y_test)[taught].mean()
    after = (adapter.apply(te, tp, x_test).argmax(1) == y_test)[taught].mean()
    assert after >= before, (before, after)
    # without anchors: only the taught classes are scored, the rest keep their base
    # probability exactly
    plain = fit_adapter(
        emb_teach, y_teach[keep], 5, "polar", BaseHead(head.w, head.b), x_teach[keep]
    )
    assert plain.classes == (1, 2)
    adapted = plain.apply(emb, probs, x_base)
    np.testing.assert_allclose(adapted[:, [0, 3, 4]], probs[:, [0, 3, 4]], atol=1e-6)
    np.testing.assert_allclose(adapted.sum(1), probs.sum(1), atol=1e-4)


def test_cli_adapt_and_batch_test(base: Path, motion, tmp_path: Path, capsys):
    x_teach, y_teach, x_test, y_test = motion
    examples = tmp_path / "examples"
    for i, (crop, label) in enumerate(zip(x_teach, y_teach, strict=True)):
        folder = examples / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), crop)
    out = tmp_path / "mine"
    assert main(["adapt", "--model", str(base), str(examples), "--out", str(out)]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    np.save(tmp_path / "X_test.npy", x_test)
    np.save(tmp_path / "y_test.npy", y_test)
    report = tmp_path / "bt.json"
    assert main(
        ["batch-test", "--model", str(out), str(tmp_path / "X_test.npy"), "--json", str(report)]
    ) in (0, 1)
    assert report.is_file()
    # an existing bundle is not replaced without --force
    assert main(["adapt", "--model", str(base), str(examples), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("problem", ["corrupt", "not_a_class", "too_few"])
def test_bad_examples_fail_clearly_and_write_nothing(
    base: Path, motion, tmp_path: Path, capsys, problem: str
):
    x_teach, y_teach, _, _ = motion
    examples = tmp_path / "examples"
    few = np.arange(len(y_teach)) % 10 < 4  # 4 per class
    for i, (crop, label) in enumerate(zip(x_teach[few], y_teach[few], strict=True)):
        folder = examples / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), crop)
    if problem == "corrupt":
        (examples / "torx" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        expect = "broken.png"
    elif problem == "not_a_class":
        (examples / "bolts").mkdir()
        cv2.imwrite(str(examples / "bolts" / "b.png"), x_teach[0])
        expect = "not a class"
    else:
        shutil.rmtree(examples / "philips")
        (examples / "philips").mkdir()
        cv2.imwrite(str(examples / "philips" / "p.png"), x_teach[0])
        expect = "too few examples of philips"
    out = tmp_path / "out"
    assert main(["adapt", "--model", str(base), str(examples), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("screwcam adapt: error:"), err
    assert expect in errors[0], err
    assert not out.exists()


def test_bundle_checks_stay_strict(base: Path, motion, tmp_path: Path):
    x_teach, y_teach, _, _ = motion
    out = tmp_path / "adapted"
    adapt_bundle(base, x_teach, y_teach, out)
    # an adapter that does not fit the model's embedding is refused by name
    f32 = np.float32
    broken = Adapter(
        "polar",
        "embedding+polar",
        np.zeros((3, 5), f32),
        np.zeros(5, f32),
        np.zeros(3, f32),
        np.ones(3, f32),
        tuple(range(5)),
        5,
    )
    (out / "adapter.npz").write_bytes(broken.to_bytes())
    with pytest.raises(ModelError, match="does not fit this model"):
        Classifier(out)
    # meta.json that forgets the embedding output no longer matches the .tflite file
    plain = tmp_path / "plain"
    shutil.copytree(base, plain)
    meta = json.loads((plain / "meta.json").read_text())
    meta.pop("embedding")
    (plain / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="2 outputs, meta.json describes 1"):
        load_bundle(plain)
    # and the adapted bundle must not be written over its own base
    with pytest.raises(ModelError, match="base bundle itself"):
        adapt_bundle(out, x_teach, y_teach, out, force=True)
    with pytest.raises(DatasetError, match="at least 3"):
        adapt_bundle(base, x_teach[:2], y_teach[:2], tmp_path / "x")
