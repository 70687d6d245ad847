"""Shared fixtures: the shipped model bundle, a Classifier on it, a demo video, and an
in-process app and client with a real pipeline (demo camera, real LiteRT model).

Tests that need TensorFlow carry `@pytest.mark.tensorflow` and are skipped, not failed,
on the device set (no `[train]` extra)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from _capture_helpers import write_demo_video
from _service_helpers import model_dir as default_model_dir

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None

# Mitsuba 3 (the pbr generator) loaded *after* TensorFlow makes the interpreter abort at
# exit ("free(): invalid pointer", exit status 134) although every test passed; loaded
# first, both shut down cleanly. Test modules import TensorFlow, so load Mitsuba here.
if importlib.util.find_spec("mitsuba") is not None:
    import mitsuba  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAS_TENSORFLOW:
        return
    skip = pytest.mark.skip(reason="needs TensorFlow: pip install 'screwcam[train]'")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The bundle shipped with screwcam (SCREWCAM_TEST_MODEL may point elsewhere)."""
    return default_model_dir()


@pytest.fixture(scope="session")
def classifier(model_dir: Path):
    from screwcam.classifier import Classifier

    return Classifier(model_dir, num_threads=2)


@pytest.fixture(scope="session")
def demo_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 640x480 mp4 (OpenCV, mp4v) of the five-head demo scene, 30 frames."""
    path = tmp_path_factory.mktemp("video") / "demo.mp4"
    write_demo_video(path, 30, heads=5, seed=0, size=(640, 480))
    return path


def make_app(model_dir: Path, **sections: dict):
    """The Flask app over a running pipeline (demo camera, real bundle), as `serve`
    builds it, but without a socket. Returns (app, pipeline); stop the pipeline."""
    from screwcam.classifier import Classifier, load_bundle
    from screwcam.edge_service.analyzer import Analyzer
    from screwcam.edge_service.app import create_app
    from screwcam.edge_service.config import Config, with_overrides
    from screwcam.edge_service.pipeline import Pipeline
    from screwcam.render import DemoSource

    config = with_overrides(Config(), sections)
    bundle = load_bundle(model_dir)
    pipeline = Pipeline(
        lambda: DemoSource(realtime=True),
        Analyzer(Classifier(bundle, num_threads=1), config.model.confidence_threshold),
        source_name="demo",
    ).start()
    app = create_app(
        config,
        pipeline,
        upload_analyzer=Analyzer(Classifier(bundle, num_threads=1), 0.5),
        model_info={"name": bundle.meta.name, "path": str(bundle.path)},
    )
    app.config["TESTING"] = True
    return app, pipeline


@pytest.fixture()
def app(model_dir: Path) -> Iterator:
    app, pipeline = make_app(model_dir)
    try:
        assert pipeline.wait_for_result(0, timeout=10.0) is not None, "no frame in 10 s"
        yield app
    finally:
        pipeline.stop()


@pytest.fixture()
def client(app):
    return app.test_client()
