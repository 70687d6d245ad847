"""`screwcam bench --quick`: a smoke run of every part on the real bundled model,
the real service and the real naive server. No assertion here is about speed
(speed goals are printed by the benchmark, not tested); these check that every
part measured something real and that the report is consistent with itself."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HAS_TENSORFLOW

from screwcam.bench.bench import README_END, README_START, update_readme
from screwcam.errors import ScrewcamError


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    tmp = tmp_path_factory.mktemp("bench")
    readme = tmp / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{README_START}\nold table\n{README_END}\n\nafter\n")
    out = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "screwcam.cli",
            "bench",
            "--quick",
            "--json",
            str(tmp / "bench.json"),
            "--markdown",
            str(tmp / "bench.md"),
            "--update-readme",
            str(readme),
        ],
        cwd=tmp,  # not the checkout: the installed screwcam is measured
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((tmp / "bench.json").read_text()), readme, out.stdout


def _positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


@pytest.mark.slow
def test_every_part_measured(quick_run: tuple[dict, Path, str]) -> None:
    results, _, _ = quick_run
    for part in ("classify", "finders", "photos", "pipeline", "latency", "streaming"):
        assert part in results, part
    assert "footprint" in results
    assert "training" in results
    finders = {row["finder"]: row for row in results["finders"]["rows"]}
    assert "classical finder" in finders and "learned detector + verifier, 2 threads" in finders
    assert "learned detector + box regressor, no verifier, 2 threads" in finders
    assert "learned detector + verifier, no box regressor, 2 threads" in finders
    assert all(_positive(row["ms_per_frame"]) for row in finders.values())

    photos = {(row["size"], row["look"]): row for row in results["photos"]["rows"]}
    assert set(photos) == {
        (size, look)
        for size in ("1920x1440", "3840x2880")
        for look in ("whole", "windows to scale 0.5")
    }
    assert all(_positive(row["ms_per_photo"]) for row in photos.values())
    # seen whole, a 12 Mpx photo's 85-112 px heads are 7-9 px to the detector
    big = photos[("3840x2880", "windows to scale 0.5")]
    assert big["recall"] > photos[("3840x2880", "whole")]["recall"] and big["heads"] == 180

    rows = results["classify"]["rows"]
    methods = {r["method"] for r in rows}
    assert {"LiteRT int8 (bundle), 1 thread", "LiteRT int8 (bundle), 2 threads"} <= methods
    assert all(_positive(r["per_crop_ms"]) for r in rows)
    if HAS_TENSORFLOW:  # the thesis's way and a float32 twin need TensorFlow
        assert {"Keras model.predict", "LiteRT float32, 1 thread"} <= methods
        predict_single = next(
            r for r in rows if r["method"] == "Keras model.predict" and r["crops_per_call"] == 1
        )
        for r in rows:  # the ratio column is computed from the same table
            assert r["speedup_vs_predict"] == pytest.approx(
                predict_single["per_crop_ms"] / r["per_crop_ms"]
            )
    else:
        assert not any(m.startswith("Keras") for m in methods)

    p = results["pipeline"]
    assert p["heads_per_frame"] >= 4.5  # the video has 5 heads; the finder sees them
    assert set(p["stages_ms"]) >= set(p["floor_stages_ms"])
    assert _positive(p["fps"]) and _positive(p["floor_ms"])
    assert p["floor_ms"] == pytest.approx(sum(p["floor_stages_ms"].values()))

    lat = results["latency"]
    assert lat["frames"] > 10 and 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["max_ms"]

    s = results["streaming"]
    assert s["screwcam"]["twenty"]["clients_served"] == 20
    assert s["screwcam"]["one"]["clients_served"] == 1
    assert s["naive"]["one"]["clients_served"] == 1
    for name in ("screwcam", "naive"):
        assert _positive(s[name]["one"]["cpu_ms_per_frame"])

    f = results["footprint"]
    assert _positive(f["rss_mb"]) and _positive(f["first_prediction_s"])
    assert _positive(f["rss_video_source_mb"])
    # VmRSS = anonymous + file + shared-memory pages: the split adds up
    assert _positive(f["rss_anon_mb"]) and _positive(f["rss_file_mb"])
    assert f["rss_anon_mb"] + f["rss_file_mb"] <= f["rss_mb"] + 0.01
    assert _positive(results["training"]["wall_s"])


@pytest.mark.slow
def test_report_regenerates_the_readme_block(quick_run: tuple[dict, Path, str]) -> None:
    results, readme, stdout = quick_run
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("# x\n\nbefore\n") and text.rstrip().endswith("after")
    block = text[text.index(README_START) : text.index(README_END)]
    # The table in the README is the one printed, and carries the measured numbers.
    assert "1. Classification per crop" in block and "5. Footprint" in block
    assert f"{results['footprint']['rss_mb']:.0f} MB" in block
    assert f"{results['footprint']['rss_anon_mb']:.0f} MB anonymous" in block
    assert block.split("\n", 1)[1].strip() == stdout.strip()


def test_readme_without_markers_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ScrewcamError, match="no benchmark block"):
        update_readme(readme, "table\n")
    assert readme.read_text() == "# no markers\n"
