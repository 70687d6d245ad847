"""The dataset format: one writer and the one loader.

A dataset folder written by `DatasetWriter` (by `screwcam slice` and `screwcam synth`):

    train/<class>/<name>.png   28x28 gray model inputs, <class> = thesis name (torx, ...)
    test/<class>/<name>.png
    X_train.npy  (N, 28, 28) uint8      y_train.npy  (N,) int64    -- the thesis format,
    X_test.npy                          y_test.npy                    rows in manifest order
    manifest.csv file,label,source,frame_index,split,condition,sha256 (of the PNG bytes)

`load_samples` reads that, the thesis's own .npy pairs, and plain folder trees of
photos of any size (class = the folder an image sits in). Every sample goes through
screwcam.preprocess, so training, batch testing and the live service see identical
inputs.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .classes import CLASSES, NUM_CLASSES, label_id
from .detector import default_main_head
from .errors import DatasetError
from .images import read_image
from .preprocess import INPUT_SIZE, preprocess, to_model_input

SPLITS = ("train", "test")
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "label", "source", "frame_index", "split", "condition", "sha256")
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)
_SHAPE = (INPUT_SIZE, INPUT_SIZE)


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _safe_stem(text: str) -> str:
    stem = Path(text).stem or "sample"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60]


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
    os.replace(tmp, path)


#: hidden folder inside the output folder where a run stages its files (+ its pid)
STAGE_PREFIX = ".partial-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


class DatasetWriter:
    """Writes a dataset folder. Use as a context manager; nothing appears under the
    final names unless the `with` block completes:

        with DatasetWriter(Path("dataset")) as writer:
            writer.add(image28, label=4, split="train", source="torx_1.mp4", frame_index=12)

    Samples are staged in a hidden folder inside `out_dir` and moved into place at the
    end (manifest.csv last). A non-empty `out_dir` is refused unless `force`; with
    `force`, an old dataset's train/, test/, arrays and manifest are replaced and other
    files are left alone.
    """

    def __init__(self, out_dir: Path, force: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.force = force
        self._stage: Path | None = None
        self._rows: list[dict[str, str]] = []
        self._images: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
        self._labels: dict[str, list[int]] = {s: [] for s in SPLITS}
        self._used: set[str] = set()

    # -- context manager ------------------------------------------------------------

    def __enter__(self) -> DatasetWriter:
        out = self.out_dir
        if out.exists() and not out.is_dir():
            raise DatasetError(f"output {out} exists and is not a folder; choose another --out")
        if out.is_dir():
            self._remove_stale_stages(out)
        if out.is_dir() and any(out.iterdir()) and not self.force:
            raise DatasetError(
                f"output folder {out} is not empty; choose another --out or pass --force "
                "to replace the dataset in it"
            )
        out.mkdir(parents=True, exist_ok=True)
        self._stage = out / f"{STAGE_PREFIX}{os.getpid()}"
        if self._stage.exists():
            shutil.rmtree(self._stage)
        self._stage.mkdir()
        return self

    @staticmethod
    def _remove_stale_stages(out: Path) -> None:
        """Stage folders left by a killed run (its process is gone) are removed; one of
        a run still writing here is an error."""
        for stage in out.glob(f"{STAGE_PREFIX}*"):
            pid_text = stage.name[len(STAGE_PREFIX) :]
            if not stage.is_dir() or not pid_text.isdigit():
                continue
            pid = int(pid_text)
            if pid != os.getpid() and _process_alive(pid):
                raise DatasetError(
                    f"another run (process {pid}) is writing a dataset into {out}; wait for "
                    f"it to finish or stop it (if it is gone, delete {stage})"
                )
            shutil.rmtree(stage, ignore_errors=True)

    def __exit__(self, exc_type: object, *exc: object) -> None:
        stage, self._stage = self._stage, None
        if stage is None:
            return
        try:
            if exc_type is None:
                self._commit(stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    # -- adding -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def counts(self) -> dict[str, list[int]]:
        """Samples per split and label so far: {"train": [n0..n4], "test": [...]}."""
        return {s: np.bincount(self._labels[s], minlength=NUM_CLASSES).tolist() for s in SPLITS}

    def add(
        self,
        image28: np.ndarray,
        label: int,
        split: str,
        source: str,
        frame_index: int,
        condition: str = "",
    ) -> str:
        """Add one (28, 28) uint8 model input; returns its path relative to out_dir."""
        if self._stage is None:
            raise RuntimeError("DatasetWriter.add() outside its `with` block")
        image = np.asarray(image28)
        if image.shape != _SHAPE or image.dtype != np.uint8:
            raise DatasetError(
                f"a sample must be a {_SHAPE} uint8 image, got {image.shape} {image.dtype} "
                f"(from {source} frame {frame_index})"
            )
        if split not in SPLITS:
            raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
        label = label_id(label)
        folder = f"{split}/{CLASSES[label]}"
        base = f"{_safe_stem(source)}_f{int(frame_index):06d}"
        rel, k = f"{folder}/{base}.png", 1
        while rel in self._used:
            k += 1
            rel = f"{folder}/{base}_{k}.png"
        self._used.add(rel)
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise DatasetError(f"could not encode {rel} as PNG")
        data = encoded.tobytes()
        target = self._stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)  # the stage is already a temporary place
        self._images[split].append(image.copy())
        self._labels[split].append(label)
        self._rows.append(
            {
                "file": rel,
                "label": CLASSES[label],
                "source": source,
                "frame_index": str(int(frame_index)),
                "split": split,
                "condition": condition,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        return rel

    # -- committing -------------------------------------------------------------------

    def _commit(self, stage: Path) -> None:
        for split in SPLITS:
            (stage / split).mkdir(exist_ok=True)
            images = self._images[split]
            x = np.stack(images) if images else np.zeros((0, *_SHAPE), np.uint8)
            _save_npy_atomic(stage / f"X_{split}.npy", x.astype(np.uint8))
            _save_npy_atomic(stage / f"y_{split}.npy", np.asarray(self._labels[split], np.int64))
        tmp = stage / f".{MANIFEST}.part"
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            # X_train rows follow the manifest's train rows in order, same for test.
            writer.writerows(self._rows)
        os.replace(tmp, stage / MANIFEST)
        names = [*SPLITS, *(f"{a}_{s}.npy" for s in SPLITS for a in "Xy"), MANIFEST]
        old_manifest = self.out_dir / MANIFEST
        if old_manifest.exists():  # the old dataset is no longer complete from here on
            old_manifest.unlink()
        for name in names:
            target = self.out_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(stage / name, target)


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Model inputs with labels. x: (N, 28, 28) uint8 (already through the one
    preprocessing), y: (N,) int64 label ids, conditions: (N,) str, paths: where each
    sample came from (a file, or "X_test.npy[17]"). no_head: how many photos had no
    head found and were used whole."""

    x: np.ndarray
    y: np.ndarray
    conditions: np.ndarray
    paths: list[str]
    no_head: int = 0

    def __len__(self) -> int:
        return len(self.y)

    @staticmethod
    def empty() -> Samples:
        return Samples(
            np.zeros((0, *_SHAPE), np.uint8), np.zeros(0, np.int64), np.zeros(0, dtype=str), []
        )

    @staticmethod
    def concat(parts: Sequence[Samples]) -> Samples:
        parts = [p for p in parts if len(p)] or [Samples.empty()]
        return Samples(
            x=np.concatenate([p.x for p in parts]),
            y=np.concatenate([p.y for p in parts]).astype(np.int64),
            conditions=np.concatenate([p.conditions.astype(str) for p in parts]),
            paths=[path for p in parts for path in p.paths],
            no_head=sum(p.no_head for p in parts),
        )


def folder_label(name: str) -> int | None:
    """The label id a folder name stands for (thesis name, English name, or digit;
    "hex_socket" works too), or None."""
    for candidate in (name, name.replace("_", " ").replace("-", " ")):
        try:
            return label_id(candidate)
        except DatasetError:
            continue
    return None


def _read_image(path: Path) -> np.ndarray:
    """An image of a photo folder: gray or BGR as stored (an alpha channel is dropped),
    EXIF orientation applied, 16-bit and float images brought to 8 bits."""
    image = read_image(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return image


def _image_to_input(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """(model input, head found). 28x28 images are taken as crops already."""
    if image.shape[:2] == _SHAPE:
        return to_model_input(image), True
    box = default_main_head(image)
    if box is None:
        return to_model_input(image), False
    return preprocess(image, box.as_list()), True


def _load_tree(root: Path) -> Samples:
    files = (
        [root]
        if root.is_file()
        else sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    )
    xs, ys, conditions, paths = [], [], [], []
    no_head = 0
    for path in files:
        label = folder_label(path.parent.name)
        if label is None:
            raise DatasetError(
                f"image {path} sits in folder {path.parent.name!r}, which is not a class; put "
                f"images in folders named after their class ({', '.join(CLASSES)}, the "
                "English names, or 0-4)"
            )
        x, found = _image_to_input(_read_image(path))
        no_head += not found
        try:
            above = path.parent.parent.relative_to(root).parts if root.is_dir() else ()
        except ValueError:  # the class folder is the root itself
            above = ()
        xs.append(x)
        ys.append(label)
        conditions.append("/".join(p for p in above if p not in ("", ".")))
        paths.append(str(path))
    if not xs:
        return Samples.empty()
    return Samples(
        np.stack(xs), np.asarray(ys, np.int64), np.asarray(conditions, dtype=str), paths, no_head
    )


def _load_array(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"{what} file {path} is missing") from exc
    except ValueError as exc:
        raise DatasetError(
            f"{path} holds Python objects, not a plain array; save it with numpy as numbers "
            f"or strings ({exc})"
        ) from exc
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc


def _images_from_x(x: np.ndarray, path: Path) -> np.ndarray:
    if x.ndim == 4 and x.shape[1:] == (*_SHAPE, 1):
        x = x[..., 0]
    elif x.ndim == 2 and x.shape[1] == INPUT_SIZE * INPUT_SIZE:
        x = x.reshape(-1, *_SHAPE)
    if x.ndim != 3 or x.shape[1:] != _SHAPE:
        raise DatasetError(
            f"{path} has shape {x.shape}; expected (N, 28, 28), (N, 28, 28, 1) or (N, 784)"
        )
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iufb":
        raise DatasetError(f"{path} has dtype {x.dtype}; expected uint8 or float pixels")
    values = x.astype(np.float64)
    if values.size and not np.isfinite(values).all():
        raise DatasetError(f"{path} contains NaN or infinite pixels")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise DatasetError(f"{path} has pixels from {low} to {high}; expected 0..1 or 0..255")
    if high <= 1.0:  # 0..1 floats, or 0/1 (bool or int) silhouettes
        values = values * 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _labels_from_y(y: np.ndarray, path: Path) -> np.ndarray:
    if y.dtype.kind in "US":
        flat = y.reshape(-1)
        try:
            out = np.asarray(
                [label_id(v.decode() if isinstance(v, bytes) else str(v)) for v in flat], np.int64
            )
        except DatasetError as exc:
            raise DatasetError(f"{path}: {exc}") from exc
        return out
    if y.dtype.kind not in "iufb":
        raise DatasetError(f"{path} has dtype {y.dtype}; expected integer labels or one-hot rows")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        if y.shape[1] != NUM_CLASSES:
            raise DatasetError(
                f"{path} has shape {y.shape}; one-hot labels need {NUM_CLASSES} columns"
            )
        rows_ok = np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)
        if not rows_ok.all():
            bad = int(np.flatnonzero(~rows_ok)[0])
            raise DatasetError(f"{path}: row {bad} is not one-hot: {y[bad].tolist()}")
        return y.argmax(axis=1).astype(np.int64)
    if y.ndim != 1:
        raise DatasetError(f"{path} has shape {y.shape}; expected (N,) labels or (N, 5) one-hot")
    if y.dtype.kind == "f" and y.size and not np.all(np.equal(np.mod(y, 1), 0)):
        raise DatasetError(f"{path} holds fractional labels; expected whole numbers 0-4")
    bad = (y < 0) | (y >= NUM_CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{path}: label {y[i]!r} at row {i} is outside 0-{NUM_CLASSES - 1} "
            f"({int(bad.sum())} such labels)"
        )
    return y.astype(np.int64)


def _manifest_rows(folder: Path, split: str) -> list[dict[str, str]] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    return [r for r in rows if r.get("split") == split]


def _y_path_for(x_path: Path) -> Path:
    name = x_path.name
    if not name.startswith("X"):
        raise DatasetError(
            f"{x_path}: thesis arrays are named X*.npy with labels in the matching y*.npy"
        )
    return x_path.with_name("y" + name[1:])


def _load_pair(x_path: Path) -> Samples:
    y_path = _y_path_for(x_path)
    x = _images_from_x(_load_array(x_path, "image"), x_path)
    y = _labels_from_y(_load_array(y_path, "label"), y_path)
    if len(x) != len(y):
        raise DatasetError(
            f"{x_path.name} has {len(x)} images but {y_path.name} has {len(y)} labels "
            f"(in {x_path.parent})"
        )
    # The one normalization, also for arrays someone else made. It is idempotent, so our
    # own datasets come back unchanged.
    xs = np.stack([to_model_input(img) for img in x]) if len(x) else x.astype(np.uint8)
    paths = [f"{x_path.name}[{i}]" for i in range(len(x))]
    conditions = np.full(len(x), "", dtype=object)
    split = x_path.stem[2:] if x_path.stem.startswith("X_") else ""
    rows = _manifest_rows(x_path.parent, split) if split else None
    if rows is not None and len(rows) == len(x):
        conditions = np.asarray([r.get("condition", "") for r in rows], dtype=object)
        paths = [str(x_path.parent / r["file"]) for r in rows]
    return Samples(xs, y, conditions.astype(str), paths)


def _pairs_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("X*.npy") if p.is_file())


def load_samples(paths: Iterable[Path | str]) -> Samples:
    """Samples from any mix of:
    - folder trees of images (any format and size): the class is the folder an image
      sits in (thesis name, English name or 0-4); the condition is the folders between
      the given root and that folder, joined by "/". Images that are not 28x28 are cut
      out around their main head exactly like the live service does (no head found:
      the whole image is used and counted in `no_head`). Unreadable images raise
      DatasetError naming the file.
    - thesis .npy pairs: an X*.npy file (labels from the matching y*.npy), or a folder
      holding such pairs -- then only the arrays are read, not the image trees next to
      them (a folder written by DatasetWriter holds both).
    """
    parts = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DatasetError(f"{path} does not exist")
        if path.is_file() and path.suffix.lower() == ".npy":
            parts.append(_load_pair(path))
        elif path.is_dir() and _pairs_in(path):
            parts.extend(_load_pair(p) for p in _pairs_in(path))
        elif path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
            parts.append(_load_tree(path))
        else:
            raise DatasetError(
                f"{path} is neither a folder, an image nor an X*.npy array; "
                f"image types read: {', '.join(sorted(IMAGE_SUFFIXES))}"
            )
    return Samples.concat(parts)


def load_dataset(path: Path | str) -> tuple[Samples, Samples]:
    """(train, test) from a dataset folder: X_train.npy/y_train.npy + X_test.npy/y_test.npy
    (the thesis format, also written by DatasetWriter), or train/ and test/ image trees."""
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} does not exist")
    x_train, x_test = folder / "X_train.npy", folder / "X_test.npy"
    if x_train.is_file() and x_test.is_file():
        return _load_pair(x_train), _load_pair(x_test)
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return load_samples([folder / "train"]), load_samples([folder / "test"])
    raise DatasetError(
        f"{folder} is not a dataset folder: expected X_train.npy, y_train.npy, X_test.npy and "
        "y_test.npy, or train/ and test/ folders with one subfolder per class "
        "(make one with `screwcam slice` or `screwcam synth`)"
    )


__all__ = [
    "DatasetWriter",
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "Samples",
    "folder_label",
    "load_dataset",
    "load_samples",
]
