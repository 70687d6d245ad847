"""The device classifier on the real committed bundle (models/default), on the real
LiteRT interpreter; and the bundle checks that refuse mismatched bundles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _service_helpers import model_dir

from screwcam.bundle import part_files
from screwcam.classes import CLASSES, NUM_CLASSES
from screwcam.classifier import Classifier, check_cpu_description, load_bundle
from screwcam.errors import ModelError
from screwcam.preprocess import PREPROCESS_VERSION, preprocess

DEFAULT = model_dir()  # the bundle shipped with screwcam


def rendered(n_per_class: int, seed: int, condition: str = "even"):
    from screwcam.render import render_sample

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label in range(NUM_CLASSES):
        for _ in range(n_per_class):
            image, box = render_sample(rng, label, condition)
            xs.append(preprocess(image, box.as_list()))
            ys.append(label)
    return np.stack(xs), np.array(ys)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(DEFAULT)


@pytest.fixture()
def bundle_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    dst.mkdir()
    parts = json.loads((DEFAULT / "meta.json").read_text()).get("parts", {})
    for name in (
        "model.tflite",
        "labels.txt",
        "meta.json",
        "base_head.npz",
        *(file for p in parts.values() for file in part_files(p)),
    ):
        if (DEFAULT / name).exists():
            shutil.copy(DEFAULT / name, dst / name)
    return dst


def test_default_bundle_loads_and_is_small():
    bundle = load_bundle(DEFAULT)
    assert bundle.labels == tuple(CLASSES)
    assert bundle.meta.preprocess_version == PREPROCESS_VERSION
    assert bundle.tflite_path.stat().st_size <= 200 * 1024


def test_output_shapes_and_probabilities(classifier: Classifier):
    x, _ = rendered(2, seed=11)
    for n in (len(x), 1, 3, len(x)):  # changing batch sizes resize the interpreter
        probs = classifier.classify(x[:n])
        assert probs.shape == (n, NUM_CLASSES)
        assert probs.dtype == np.float32
        assert np.all(probs >= 0) and np.all(probs <= 1)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.03)
    assert classifier.classify(x[:0]).shape == (0, NUM_CLASSES)


def test_batch_equals_one_by_one(classifier: Classifier):
    x, _ = rendered(2, seed=12)
    together = classifier.classify(x)
    alone = np.concatenate([classifier.classify(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_generic_quantization_matches_fast_path(classifier: Classifier):
    x, _ = rendered(2, seed=13)
    fast = classifier.classify(x)
    generic = Classifier(DEFAULT)
    generic._in_mode = "quantize"  # the scale/zero-point formula instead of the bit flip
    np.testing.assert_allclose(generic.classify(x), fast, atol=1e-6)


def test_classifies_rendered_heads(classifier: Classifier):
    x, y = rendered(8, seed=2024)
    pred = classifier.classify(x).argmax(axis=1)
    assert (pred == y).mean() >= 0.9, f"predicted {pred.tolist()} for {y.tolist()}"


def test_views_average_the_turned_and_mirrored_crops(classifier: Classifier):
    x, y = rendered(2, seed=14)
    turned = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
    every = turned + [t[:, :, ::-1] for t in turned]
    for views in (4, 8):
        by_hand = np.mean([classifier.classify(np.ascontiguousarray(v)) for v in every[:views]], 0)
        averaged = Classifier(DEFAULT, views=views).classify(x)
        np.testing.assert_allclose(averaged, by_hand, atol=1e-6)
        np.testing.assert_allclose(averaged.sum(axis=1), 1.0, atol=0.01)  # int8 outputs
    assert Classifier(DEFAULT, views=8).classify(x[:0]).shape == (0, NUM_CLASSES)
    with pytest.raises(ValueError, match="views must be one of"):
        Classifier(DEFAULT, views=3)


def test_rejects_bad_crops(classifier: Classifier):
    with pytest.raises(ValueError):
        classifier.classify(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError):
        classifier.classify(np.zeros((2, 28, 28), np.float32))


def _edit_meta(path: Path, **changes) -> None:
    meta = json.loads((path / "meta.json").read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            meta[section][field] = value
        else:
            meta[section] = value
    (path / "meta.json").write_text(json.dumps(meta))


def test_copy_of_bundle_loads(bundle_copy: Path):
    assert load_bundle(bundle_copy).labels == tuple(CLASSES)


def test_wrong_labels_refused(bundle_copy: Path):
    labels = list(CLASSES)
    labels[1], labels[2] = labels[2], labels[1]
    (bundle_copy / "labels.txt").write_text("\n".join(labels) + "\n")
    with pytest.raises(ModelError, match="labels.txt"):
        load_bundle(bundle_copy)


def test_wrong_classes_in_meta_refused(bundle_copy: Path):
    _edit_meta(bundle_copy, classes=list(reversed(CLASSES)))
    with pytest.raises(ModelError, match="classes"):
        Classifier(bundle_copy)


def test_wrong_preprocess_version_refused(bundle_copy: Path):
    _edit_meta(bundle_copy, preprocess_version=PREPROCESS_VERSION + 1)
    with pytest.raises(ModelError, match="preprocessing version"):
        load_bundle(bundle_copy)


def test_wrong_input_shape_refused(bundle_copy: Path):
    _edit_meta(bundle_copy, input__shape=[-1, 32, 32, 1])
    with pytest.raises(ModelError, match="input shape"):
        load_bundle(bundle_copy)


def test_meta_disagreeing_with_tflite_refused(bundle_copy: Path):
    meta = json.loads((bundle_copy / "meta.json").read_text())
    other = "float32" if meta["input"]["dtype"] != "float32" else "int8"
    _edit_meta(bundle_copy, input__dtype=other)
    with pytest.raises(ModelError, match="dtype"):
        load_bundle(bundle_copy)


def test_wrong_quantization_refused(bundle_copy: Path):
    meta = json.loads((bundle_copy / "meta.json").read_text())
    if meta["input"]["dtype"] == "float32":
        pytest.skip("float bundle has no quantization parameters")
    _edit_meta(bundle_copy, input__scale=meta["input"]["scale"] * 2)
    with pytest.raises(ModelError, match="quantization"):
        load_bundle(bundle_copy)


def test_missing_and_corrupt_files_refused(bundle_copy: Path, tmp_path: Path):
    with pytest.raises(ModelError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    (bundle_copy / "model.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelError, match="not a valid TFLite model"):
        load_bundle(bundle_copy)
    (bundle_copy / "meta.json").write_text("{broken")
    with pytest.raises(ModelError, match="meta.json"):
        load_bundle(bundle_copy)
    (bundle_copy / "labels.txt").unlink()
    with pytest.raises(ModelError, match="labels.txt"):
        load_bundle(bundle_copy)


X86_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2\n\n"
PI4_CPUINFO = (
    "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
    "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n"
)


def test_x86_cpuinfo_in_an_arm64_process_is_refused_by_name(tmp_path: Path):
    # What QEMU 7.2 user mode shows an emulated arm64 program; LiteRT 2.2+ would
    # segfault on it (tests/arm64 runs the real thing under emulation).
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(X86_CPUINFO)
    with pytest.raises(ModelError, match=r"cpuinfo describes an x86 CPU.*ai-edge-litert<2\.2"):
        check_cpu_description(cpuinfo, machine="aarch64", litert="2.3.0")


@pytest.mark.parametrize(
    ("text", "machine", "litert"),
    [
        (PI4_CPUINFO, "aarch64", "2.3.0"),  # a Pi
        (X86_CPUINFO, "x86_64", "2.3.0"),  # this machine
        (X86_CPUINFO, "aarch64", "2.1.6"),  # LiteRT before 2.2 survives it
    ],
)
def test_cpuinfo_that_litert_handles_passes(tmp_path: Path, text: str, machine: str, litert: str):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    check_cpu_description(cpuinfo, machine=machine, litert=litert)
