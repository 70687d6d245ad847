"""The learned head detector: the shipped bundle's detector.tflite on the real LiteRT
interpreter, against the demo camera's ground truth, on empty surfaces, through
`screwcam detect`, through `slice` on a video where one head fills the frame, and
the bundle checks that tie the detector to the classifier."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from _image_helpers import jpeg_with_exif, png_with_exif
from _service_helpers import copy_bundle

from screwcam.bundle import read_bundle
from screwcam.cli import main as cli_main
from screwcam.detector import (
    DETECTOR_PART,
    PHOTO_TILE_SCALE,
    Detector,
    _starts,
    letterbox,
    load_detector,
)
from screwcam.errors import ModelError
from screwcam.frames import Box
from screwcam.render import BACKGROUNDS, DEMO_CONDITIONS, DemoSource, demo_mosaic, render_empty
from screwcam.render.drawing import TAU, random_spec
from screwcam.render.scene import Light, composite, make_background, make_placed, to_u8

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "models" / "default"


@pytest.fixture(scope="module")
def detector() -> Detector:
    det = load_detector(read_bundle(DEFAULT), num_threads=2)
    assert det is not None, "models/default ships no detector part"
    return det


def _matched(found, truth, iou: float = 0.5) -> int:
    used: set[int] = set()
    for t in truth:
        hit = next((k for k, f in enumerate(found) if k not in used and f.iou(t) >= iou), None)
        if hit is not None:
            used.add(hit)
    return len(used)


def test_default_bundle_ships_a_detector_part() -> None:
    bundle = read_bundle(DEFAULT)
    entry = bundle.meta.parts[DETECTOR_PART]
    assert entry["preprocess_version"] == bundle.meta.preprocess_version
    assert bundle.part(DETECTOR_PART).is_file()
    metrics = entry["metrics"]["by_family"]
    assert {"demo"} <= set(metrics), metrics  # the model card's detector numbers


@pytest.mark.parametrize("seed", [0, 1, 4])  # wood, light and dark surfaces
def test_finds_every_head_of_the_demo_ground_truth(detector: Detector, seed: int) -> None:
    src = DemoSource(realtime=False, seed=seed)
    src.open()
    seg = int(src.SEGMENT_SECONDS * src.fps)
    missed, false_boxes, heads = [], 0, 0
    for condition_index in range(len(DEMO_CONDITIONS)):  # every lighting condition
        for i in range(condition_index * seg, (condition_index + 1) * seg, 9):
            image, truth = src.render(i)
            boxes = [t.box for t in truth]
            found = detector(image)
            hits = _matched(found, boxes)
            heads += len(boxes)
            false_boxes += len(found) - hits
            if hits < len(boxes):
                missed.append((i, src.condition_at(i), len(boxes) - hits))
    src.close()
    assert heads >= 200
    assert missed == [], f"frames with missed heads (index, condition, missed): {missed}"
    # the live path's bar (test_service_pipeline): at most 2 % boxes where no head is;
    # the shipped detector's model card reports 15 in 2250 demo heads (a shadow edge
    # on the dark surface that closes into a small round outline)
    assert false_boxes <= 0.02 * heads, false_boxes


def test_boxes_nothing_on_empty_surfaces(detector: Detector) -> None:
    rng = np.random.default_rng(11)
    found = {}
    for kind in BACKGROUNDS:
        for condition in DEMO_CONDITIONS:
            image = render_empty(rng, (640, 480), condition, kind)
            boxes = detector(image)
            if boxes:
                found[(kind, condition)] = boxes
    assert found == {}
    assert detector(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector(np.zeros((480, 640), np.uint8)) == []


# --- photos: a large image searched in windows ------------------------------------------


@pytest.fixture(scope="module")
def photo_detector() -> Detector:
    det = load_detector(read_bundle(DEFAULT), num_threads=2, tile_scale=PHOTO_TILE_SCALE)
    assert det is not None
    return det


def test_windows_find_the_heads_a_whole_large_image_loses(
    detector: Detector, photo_detector: Detector
) -> None:
    image, truth = demo_mosaic(3)
    whole = _matched(detector(image), truth)
    # seen whole, heads are lost (the reason photos are searched in windows): 35 of 45
    # found with the box regressor, under three quarters before it
    assert whole < 0.85 * len(truth), whole
    found = photo_detector(image)
    hits = _matched(found, truth)
    assert hits >= 0.95 * len(truth), (hits, len(truth))
    assert hits - whole >= 0.15 * len(truth), (hits, whole)
    # one box per head: levels and overlapping windows do not box a head twice, and the
    # frames' seams are not heads
    assert len(found) - hits <= 1, [b for b in found if max(b.iou(t) for t in truth) < 0.5]
    # an image the detector's frame holds at the scale windows go down to (a 640x480
    # camera frame) is seen whole, once, either way
    frame = np.ascontiguousarray(image[:480, :640])
    assert photo_detector(frame) == detector(frame)


def _detector_runs(detector: Detector, image: np.ndarray) -> list[tuple[int, ...]]:
    """The shapes of the images the heat map ran on while `detector` looked at `image`."""
    runs = []
    propose = detector._propose

    def counted(gray: np.ndarray, low: float) -> list:
        runs.append(gray.shape)
        return propose(gray, low)

    detector._propose = counted  # type: ignore[method-assign]
    try:
        detector(image)
    finally:
        del detector._propose
    return runs


def test_a_1280x720_frame_in_windows_is_seven_detector_runs(photo_detector: Detector) -> None:
    # the cost the config and README quote: the whole frame, then 3 x 2 windows at 0.5
    runs = _detector_runs(photo_detector, np.full((720, 1280), 128, np.uint8))
    assert runs == [(720, 1280)] + [(512, 640)] * 6


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (2592, 1944)])
def test_frames_too_large_to_see_whole_get_advice_that_names_the_cost(
    detector: Detector, photo_detector: Detector, size: tuple[int, int]
) -> None:
    # the live stream sees a camera frame whole: when that shrinks heads below ~12
    # detector px, frame_advice says so and what windows would cost, counted here by
    # running them
    width, height = size
    advice = detector.frame_advice(width, height)
    assert advice is not None and "tile_scale = 0.5" in advice and f"{width}x{height}" in advice
    scale = min(320 / width, 256 / height)
    assert f"heads under about {math.ceil(12 / scale)} px" in advice
    runs = _detector_runs(photo_detector, np.full((height, width), 128, np.uint8))
    assert f"({len(runs)} detector runs per frame instead of 1)" in advice, (len(runs), advice)
    # frames the detector sees at its training scale or finer, or searched in windows
    # already, need nothing
    assert photo_detector.frame_advice(width, height) is None
    for small in ((640, 480), (320, 240), (400, 300), (640, 512)):
        assert detector.frame_advice(*small) is None, small


def test_windows_box_nothing_on_large_empty_surfaces(photo_detector: Detector) -> None:
    rng = np.random.default_rng(12)
    found = {}
    for kind in BACKGROUNDS:
        for condition in DEMO_CONDITIONS[::2]:
            boxes = photo_detector(render_empty(rng, (2016, 1512), condition, kind))
            if boxes:
                found[(kind, condition)] = boxes
    assert found == {}


@pytest.mark.parametrize(
    ("length", "window", "overlap"),
    [(2016, 640, 128), (1512, 512, 128), (1000, 999, 64), (5000, 333, 100), (640, 640, 64)],
)
def test_windows_cover_the_image_and_overlap(length: int, window: int, overlap: int) -> None:
    starts = _starts(length, window, overlap)
    assert starts[0] == 0 and starts[-1] == max(0, length - window)
    assert starts == sorted(set(starts))
    # neighbours overlap by at least `overlap` (less one pixel of rounding), so a head up
    # to that size lies whole in one of them
    assert all(a + window - b >= overlap - 1 for a, b in zip(starts, starts[1:], strict=False))


def test_refine_boxes_snaps_a_rough_box_to_the_outline_but_not_to_the_recess() -> None:
    from screwcam.heads import refine_boxes
    from screwcam.preprocess import to_gray

    src = DemoSource(realtime=False, seed=1)
    src.open()
    image, truth = src.render(0)  # even light
    src.close()
    gray = to_gray(image)
    for t in truth:
        b = t.box
        rough = Box(b.x + b.w // 8, b.y - b.h // 10, int(b.w * 0.88), int(b.h * 1.12))
        assert rough.iou(b) < 0.8
        ((snapped, confirmed),) = refine_boxes(gray, [rough])
        assert confirmed and snapped.iou(b) >= 0.8
        # a box around the recess only (a third of the head) is left as it is
        inner = Box(b.x + b.w // 3, b.y + b.h // 3, b.w // 3, b.h // 3)
        assert refine_boxes(gray, [inner]) == [(inner, False)]


def test_detector_reuses_its_letterbox_as_the_outline_finders_work_image() -> None:
    """The letterbox's scaled frame is handed to refine_boxes in place of a second resize;
    the boxes must be exactly those of a refine pass that scales the frame itself, for
    frames whose letterbox scale equals the work scale (640x480, 1280x720) and for one
    where it does not (portrait: the detector falls back to its own resize)."""
    import cv2

    from screwcam.heads import refine_boxes, work_size
    from screwcam.preprocess import to_gray

    detector = load_detector(read_bundle(DEFAULT))
    assert detector is not None
    src = DemoSource(realtime=False, seed=0)
    src.open()
    image, truth = src.render(3)
    src.close()
    gray = to_gray(image)
    for frame in (gray, cv2.resize(gray, (1280, 720)), np.ascontiguousarray(gray[:, :360])):
        heat, box, scale, ox, oy, small = detector._run(frame)
        (ww, wh), wscale = work_size(*frame.shape[:2])
        assert (small is not None) == (scale == wscale)
        boxes = [b for b, _ in detector.detect(frame, verify=False)]
        assert boxes
        if small is not None:
            assert small.shape == (wh, ww)
            assert refine_boxes(frame, boxes, small) == refine_boxes(frame, boxes)
    with pytest.raises(ValueError, match="work image"):
        refine_boxes(gray, [truth[0].box], np.zeros((10, 10), np.uint8))


def test_letterbox_maps_points_back() -> None:
    gray = np.zeros((300, 200), np.uint8)  # portrait
    canvas, scale, ox, oy = letterbox(gray, (320, 256))
    assert canvas.shape == (256, 320)
    assert math.isclose(scale, 256 / 300) and oy == 0 and ox == (320 - round(200 * scale)) // 2


# --- screwcam detect ----------------------------------------------------------------


def test_detect_json_on_known_images(tmp_path: Path) -> None:
    """A rendered demo frame with known boxes, written plainly (PNG) and rotated by
    EXIF (JPEG and PNG, orientation 6 = turn 90 degrees clockwise to view): the boxes
    come back in the image's own (viewed) pixels."""
    src = DemoSource(realtime=False, seed=0)
    src.open()
    image, truth = src.render(10)
    src.close()
    h = image.shape[0]
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "plain.png"), image)
    (photos / "turned.jpg").write_bytes(jpeg_with_exif(image, 6))
    (photos / "turned.png").write_bytes(png_with_exif(image, 6))
    out = tmp_path / "heads.json"
    assert cli_main(["detect", str(photos), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    by_name = {Path(e["file"]).name: e for e in data["images"]}
    assert set(by_name) == {"plain.png", "turned.jpg", "turned.png"}
    plain = by_name["plain.png"]
    assert (plain["width"], plain["height"]) == (640, 480)
    boxes = [Box(*head["box"]) for head in plain["heads"]]
    assert _matched(boxes, [t.box for t in truth]) == len(truth) == len(boxes)
    for head in plain["heads"]:
        assert set(head) >= {"box", "label", "confidence"}
        assert head["label"] in read_bundle(DEFAULT).labels + ("unknown",)
        assert 0.0 <= head["confidence"] <= 1.0
    # a point (x, y) of the stored image is at (h - 1 - y, x) in the viewed one
    turned = [Box(h - t.box.y - t.box.h, t.box.x, t.box.h, t.box.w) for t in truth]
    for name in ("turned.jpg", "turned.png"):
        entry = by_name[name]
        assert (entry["width"], entry["height"]) == (480, 640), name
        boxes = [Box(*head["box"]) for head in entry["heads"]]
        assert _matched(boxes, turned) == len(truth), name


def test_detect_searches_a_large_photo_in_windows(tmp_path: Path, capsys) -> None:
    image, truth = demo_mosaic(3)
    photo = tmp_path / "bench.jpg"
    cv2.imwrite(str(photo), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    counts = {}
    for name, extra in (("windows", []), ("whole", ["--whole"])):
        out = tmp_path / f"{name}.json"
        assert cli_main(["detect", str(photo), "--views", "1", "--json", str(out), *extra]) == 0
        (entry,) = json.loads(out.read_text())["images"]
        assert (entry["width"], entry["height"]) == (1920, 1440)
        counts[name] = _matched([Box(*h["box"]) for h in entry["heads"]], truth)
    assert f"{photo}: " in capsys.readouterr().out
    assert counts["windows"] >= 0.95 * len(truth), counts
    # seen whole (--whole) heads are lost: 36 of 45 with the box regressor, under 32 before
    assert counts["windows"] - counts["whole"] >= 0.15 * len(truth), counts
    with pytest.raises(SystemExit) as refused:
        cli_main(["detect", str(photo), "--tile-scale", "3"])
    assert refused.value.code == 2
    assert "must be in 0.05..2" in capsys.readouterr().err


def test_detect_draws_each_photo_and_overwrites_nothing(tmp_path: Path, capsys) -> None:
    src = DemoSource(realtime=False, seed=1)
    src.open()
    image, truth = src.render(20)
    src.close()
    photos = tmp_path / "photos"
    for sub in ("a", "b"):  # the same file name in two folders: drawn apart
        (photos / sub).mkdir(parents=True)
        cv2.imwrite(str(photos / sub / "x.png"), image)
    out, found = tmp_path / "drawn", tmp_path / "heads.json"
    args = ["detect", str(photos), "--draw", str(out), "--views", "1", "--json", str(found)]
    assert cli_main(args) == 0
    assert f"drawn to {out / 'a' / 'x.jpg'}" in capsys.readouterr().out
    drawn = cv2.imread(str(out / "b" / "x.jpg"))
    assert drawn.shape == image.shape
    heads = json.loads(found.read_text())["images"][1]["heads"]
    assert _matched([Box(*h["box"]) for h in heads], [t.box for t in truth]) == len(truth)
    # every head's box is drawn where the JSON says: its edges differ from the photo,
    # while the photo elsewhere differs by JPEG noise only
    drawn_on = np.zeros(image.shape[:2], bool)
    for head in heads:
        x, y, w, h = head["box"]
        changed = np.abs(drawn[y, x : x + w].astype(int) - image[y, x : x + w]).max(axis=1) > 30
        assert changed.mean() > 0.8, (head, changed.mean())
        drawn_on[max(0, y - 40) : y + h + 40, max(0, x - 10) : x + w + 200] = True
    assert np.abs(drawn.astype(int) - image)[~drawn_on].mean() < 4
    assert sorted(p.name for p in out.rglob("*")) == ["a", "b", "x.jpg", "x.jpg"]
    # nothing is overwritten without asking, and nothing is analysed first
    before = (out / "a" / "x.jpg").read_bytes()
    assert cli_main(["detect", str(photos), "--draw", str(out)]) == 2
    assert "exists (and 1 more); pass --force" in capsys.readouterr().err
    assert (out / "a" / "x.jpg").read_bytes() == before
    assert cli_main(["detect", str(photos), "--draw", str(out), "--force"]) == 0
    # two photos named alike, passed as files, would land on one drawing
    args = ["detect", str(photos / "a" / "x.png"), str(photos / "b" / "x.png")]
    assert cli_main([*args, "--draw", str(tmp_path / "other")]) == 2
    assert "would both be drawn to" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_detect_refuses_a_missing_input(tmp_path: Path, capsys) -> None:
    assert cli_main(["detect", str(tmp_path / "nothing.jpg")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- slicing a video whose head fills the frame --------------------------------------


def _big_head_video(path: Path, frames: int = 60) -> Path:
    """One head (diameter 85-100 % of the frame's height) turning and drifting."""
    rng = np.random.default_rng(3)
    width, height = 640, 480
    background = to_u8(make_background(rng, height, width, "wood"))
    head = make_placed(random_spec(rng, 4), 0.47 * height, rng)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        canvas = background.copy()
        t = i / frames
        composite(
            canvas,
            head,
            width / 2 + 40 * math.sin(TAU * t),
            height / 2 + 10 * math.cos(TAU * t),
            0.3 + TAU * t,
            Light(0.7 + t, 1.0, 0.35),
            scale=0.9 + 0.1 * math.sin(TAU * t),
        )
        writer.write(canvas)
    writer.release()
    return path


def test_slicing_a_frame_filling_head_keeps_nearly_every_frame(tmp_path: Path) -> None:
    from screwcam.capture.slice import slice_video

    video = _big_head_video(tmp_path / "torx_big.mp4")
    sliced = slice_video(video, "torx_big", 4, every=1, min_change=0.0)
    total = sliced.frames_looked_at
    assert total == 60
    assert sliced.kept >= 0.95 * total, sliced


@pytest.mark.parametrize(
    ("style", "kind"),
    [
        ("solid-hex", "sechskant"),
        ("icon-light", "philips"),
        ("icon-light", "pozidriv"),
        ("icon-dark", "torx"),
        ("icon-light", "innensechskant"),
    ],
)
def test_slicing_a_thesis_like_video_keeps_nearly_every_frame(
    tmp_path: Path, style: str, kind: str
) -> None:
    """The thesis's videos: an icon zoomed until it fills the frame, or a solid black hex
    head (85-100 % of the frame's height, turning and drifting), drawn by OpenCV's
    primitives, not by our renderer."""
    from _thesis_pictures import camera_look, picture

    from screwcam.capture.slice import slice_video

    rng = np.random.default_rng(11)
    path = tmp_path / f"{kind}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    assert writer.isOpened()
    for i in range(60):
        t = i / 60
        centre = (320 + 30 * math.sin(TAU * t), 240 + 12 * math.cos(TAU * t))
        diameter = 480 * (0.925 + 0.075 * math.sin(2 * TAU * t))
        img, _ = picture(rng, style, kind, diameter, rotation=TAU * t / 3, centre=centre)
        writer.write(cv2.cvtColor(camera_look(rng, img), cv2.COLOR_GRAY2BGR))
    writer.release()
    sliced = slice_video(path, kind, 0, every=1, min_change=0.0)
    assert sliced.frames_looked_at == 60
    assert sliced.kept >= 0.95 * 60, sliced


# --- the bundle ties the detector to the classifier ----------------------------------


def test_bundle_refuses_a_detector_of_another_preprocessing_version(tmp_path: Path) -> None:
    bundle = copy_bundle(DEFAULT, tmp_path)
    meta = json.loads((bundle / "meta.json").read_text())
    meta["parts"][DETECTOR_PART]["preprocess_version"] = meta["preprocess_version"] + 1
    (bundle / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="preprocessing version"):
        read_bundle(bundle)


def test_bundle_refuses_a_missing_detector_file(tmp_path: Path) -> None:
    bundle = copy_bundle(DEFAULT, tmp_path)
    (bundle / read_bundle(DEFAULT).meta.parts[DETECTOR_PART]["file"]).unlink()
    with pytest.raises(ModelError, match="missing"):
        read_bundle(bundle)


def test_export_detector_restores_the_part_after_the_classifier_is_replaced(
    tmp_path: Path,
) -> None:
    """The classifier's recipe rewrites meta.json without parts; `export-detector`
    adds the detector back (from the shipped bundle folder itself) and is re-runnable."""
    bundle = copy_bundle(DEFAULT, tmp_path)
    meta = json.loads((bundle / "meta.json").read_text())
    entry = meta.pop("parts")[DETECTOR_PART]
    (bundle / "meta.json").write_text(json.dumps(meta))
    (bundle / entry["file"]).unlink()
    assert read_bundle(bundle).part(DETECTOR_PART) is None
    for _ in range(2):
        assert cli_main(["export-detector", str(DEFAULT), "--into", str(bundle)]) == 0
        restored = read_bundle(bundle)
        assert restored.meta.parts[DETECTOR_PART]["metrics"] == entry["metrics"]
        assert restored.meta.training == meta["training"]  # the classifier's meta is kept
        assert load_detector(restored) is not None
    assert not list(bundle.glob(".*"))  # no temporary files left behind


def test_varied_scene_family_boxes_the_heads_it_draws(detector: Detector) -> None:
    # the "varied" training family draws render2d's heads (styles, finishes, bright
    # recesses, oblique views) into scenes; its boxes must be where the heads are, which
    # the shipped detector (never trained on this family) confirms for most of them
    pytest.importorskip("skimage")  # half of its surfaces are scikit-image's photos
    from screwcam.training.detector import evaluate_scenes, test_scenes

    images, boxes = test_scenes("varied", 40, seed=5)
    assert sum(len(b) for b in boxes) >= 80
    for image, scene_boxes in zip(images, boxes, strict=True):
        h, w = image.shape
        for b in scene_boxes:
            assert b.x + b.w > 0 and b.y + b.h > 0 and b.x < w and b.y < h
    result = evaluate_scenes(detector, images, boxes, min_side=24)
    assert result["recall"] >= 0.55 and result["precision"] >= 0.6, result


def _layered_family(detector: Detector, family: str, n: int, seed: int) -> dict:
    """Test scenes of a family whose heads another generator traced one at a time: every
    box inside the frame; the detector's recall and precision on them (heads >= 24 px)."""
    from screwcam.training.detector import evaluate_scenes, test_scenes

    images, boxes = test_scenes(family, n, seed=seed)
    for image, scene_boxes in zip(images, boxes, strict=True):
        h, w = image.shape
        for b in scene_boxes:
            assert b.x >= 0 and b.y >= 0 and b.x + b.w <= w and b.y + b.h <= h
    return evaluate_scenes(detector, images, boxes, min_side=24)


def test_sdf_scene_family_boxes_the_heads_it_draws(detector: Detector) -> None:
    # the "sdf" family traces render_sdf's heads at their size and lays them, with their
    # shadows, onto synthetic or photo surfaces. Most boxes the detector draws must be on
    # a ground-truth head (precision), and it must find a good share of them: the
    # shipped detector, which never trained on sdf scenes, measured recall 0.50 and
    # precision 0.84 on these 40 scenes
    pytest.importorskip("skimage")
    result = _layered_family(detector, "sdf", 40, seed=5)
    assert result["heads"] >= 80
    assert result["recall"] >= 0.4 and result["precision"] >= 0.7, result


def test_pbr_scene_family_boxes_the_heads_it_draws(detector: Detector) -> None:
    # the "pbr" test family lays render_pbr's path-traced heads (Mitsuba) onto the same
    # surfaces; no detector trains on it. The shipped detector must find some of its
    # heads with many of its boxes on them. On these 6 scenes (18 heads >= 24 px) the
    # detector of 2026-11-28 measured recall 0.33, precision 0.86 (over 8 seeds of 6
    # scenes recall 0.22-0.93, precision 0.67-1.0); that of 2026-11-29, whose verifier
    # keeps more boxes, recall 0.44, precision 0.57 (on 150 scenes 0.515 / 0.743). Six
    # scenes are a small sample: the bounds fail if the boxes are not where the heads are
    pytest.importorskip("mitsuba")
    pytest.importorskip("skimage")
    result = _layered_family(detector, "pbr", 6, seed=8)
    assert result["heads"] >= 10
    assert result["recall"] >= 0.15 and result["precision"] >= 0.45, result


def test_silhouette_scenes_draw_frame_filling_heads_inside_their_boxes() -> None:
    # the training scenes that stand for the thesis's videos: half of them one head of
    # 60-130 % of the frame's height (cut by the edges above 100 %), the rest as in the
    # other scenes; every box is the drawn head's part inside the frame, which differs
    # from the ground around it
    from screwcam.training.detector_data import compose_scene

    rng = np.random.default_rng(3)
    big = 0
    for _ in range(40):
        scene = compose_scene(rng, "render", condition="silhouette")
        h, w = scene.image.shape
        for b in scene.boxes:
            assert b.x >= 0 and b.y >= 0 and b.x + b.w <= w and b.y + b.h <= h, b
        if len(scene.boxes) == 1 and scene.boxes[0].h >= 0.55 * h:
            b = scene.boxes[0]
            inside = scene.image[b.y : b.y + b.h, b.x : b.x + b.w].astype(np.float32)
            assert inside.std() > 10.0, b  # a head with its recess, not an empty ground
            big += 1
    assert 10 <= big <= 30, big


def test_sdf_scene_family_has_no_silhouettes() -> None:
    from screwcam.training.detector_data import compose_scene

    with pytest.raises(ValueError, match="silhouettes"):
        compose_scene(np.random.default_rng(0), "sdf", condition="silhouette")


def _face_and_ground(image: np.ndarray, b: Box) -> tuple[float, float]:
    """Median gray of a head's face (0.6-0.9 of its radius: outside the recess, inside
    the rim) and of the ground around it (1.25-1.6 of its radius)."""
    h, w = image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - b.x - b.w / 2) / (b.w / 2), (yy - b.y - b.h / 2) / (b.h / 2))
    return float(np.median(image[(r > 0.6) & (r < 0.9)])), float(
        np.median(image[(r > 1.25) & (r < 1.6)])
    )


def test_camouflaged_training_heads_take_the_surface_tone_and_keep_whole_boxes() -> None:
    # `train-detector --camouflage`: heads painted in the surface's own tone (the ones
    # the detector boxed on the recess alone); the box stays the whole head's
    from screwcam.training.detector_data import compose_scene

    def measure(camouflage: float) -> tuple[float, float, int]:
        rng = np.random.default_rng(21)
        gaps, sides = [], []
        for _ in range(30):
            scene = compose_scene(rng, "render", condition="even", camouflage=camouflage)
            for b in scene.boxes:
                if min(b.w, b.h) >= 24:
                    face, ground = _face_and_ground(scene.image.astype(np.float32), b)
                    gaps.append(abs(face - ground))
                    sides.append(math.sqrt(b.w * b.h))
        return float(np.median(gaps)), float(np.median(sides)), len(gaps)

    plain_gap, plain_side, plain_n = measure(0.0)
    camo_gap, camo_side, camo_n = measure(1.0)
    assert min(plain_n, camo_n) >= 20
    assert camo_gap < 0.5 * plain_gap, (camo_gap, plain_gap)
    # the same kind of heads, boxed whole: box sizes as without camouflage
    assert 0.7 < camo_side / plain_side < 1.4, (camo_side, plain_side)
