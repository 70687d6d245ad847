"""The model bundle format: one reader/validator, one writer, a typed meta.

A bundle is a folder:

    model.tflite   the classifier (LiteRT flatbuffer)
    labels.txt     one class name per output, in output order
    meta.json      BundleMeta: format and version, name, creation time, classes,
                   preprocessing version, input/output tensors, quantization,
                   training data and metrics, `embedding` (the optional second output:
                   the layer before the softmax, for on-device adaptation) and `parts`
                   (further files of the bundle, such as a head detector or an
                   adapter fitted on the device, each with its own meta)
    ...            anything a part names (MODEL_CARD.md, metrics.json, plots)

`read_bundle` checks the files and their agreement with this version of screwcam
(format, preprocessing version, labels vs classes vs output size); the runtime
(`screwcam.classifier.load_bundle`) adds the checks against the interpreter's own
tensors. `write_bundle` is the only writer: every file goes to a temporary name first
and `meta.json` is renamed into place last, so a bundle is either complete or absent.

The bundle's labels are the source of labels everywhere (page, metrics, colours);
`screwcam.classes` only names the thesis's five classes for training and display.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelError
from .preprocess import INPUT_SIZE, PREPROCESS_VERSION

BUNDLE_FORMAT = "screwcam-bundle"
BUNDLE_FORMAT_VERSION = 1
MODEL_FILE = "model.tflite"
LABELS_FILE = "labels.txt"
META_FILE = "meta.json"
DTYPES = ("int8", "uint8", "float32")
REEXPORT = "re-export it with this screwcam version (`screwcam export MODEL_DIR`)"
#: the bundle `--model` means when not given: `models/default`, shipped inside the package
DEFAULT_BUNDLE = "models/default"


@dataclass(frozen=True)
class TensorSpec:
    """One model tensor as meta.json records it."""

    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    #: the tensor's name in the .tflite file (recorded when the model has two outputs)
    name: str | None = None

    @classmethod
    def from_details(cls, det: Mapping[str, Any], named: bool = False) -> TensorSpec:
        """From a LiteRT interpreter's tensor details (batch dimension written as -1)."""
        import numpy as np

        scale, zero = det["quantization"]
        dtype = np.dtype(det["dtype"]).name
        quantized = dtype != "float32"
        return cls(
            shape=(-1, *(int(v) for v in det["shape"][1:])),
            dtype=dtype,
            scale=float(scale) if quantized else None,
            zero_point=int(zero) if quantized else None,
            name=str(det["name"]) if named else None,
        )

    @classmethod
    def from_json(cls, data: Any, what: str, where: Path) -> TensorSpec:
        if not isinstance(data, dict):
            raise ModelError(f"{where}: meta.json has no {what!r} section; {REEXPORT}")
        shape = data.get("shape")
        if not isinstance(shape, list) or not all(isinstance(v, int) for v in shape):
            raise ModelError(f"{where}: meta.json {what} shape {shape!r} is not a list of ints")
        dtype = data.get("dtype")
        if dtype not in DTYPES:
            raise ModelError(
                f"{where}: model {what} dtype {dtype!r} is not one of {sorted(DTYPES)}; {REEXPORT}"
            )
        scale, zero = data.get("scale"), data.get("zero_point")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise ModelError(f"{where}: meta.json {what} name {name!r} is not a string")
        return cls(
            tuple(shape),
            dtype,
            None if scale is None else float(scale),
            None if zero is None else int(zero),
            name,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype}
        if self.scale is not None:
            out["scale"] = self.scale
            out["zero_point"] = self.zero_point
        if self.name is not None:
            out["name"] = self.name
        return out


_KNOWN_KEYS = {
    "format",
    "format_version",
    "name",
    "created",
    "classes",
    "preprocess_version",
    "quantization",
    "input",
    "output",
    "size_bytes",
    "training",
    "metrics",
    "parts",
    "embedding",
}


@dataclass(frozen=True)
class BundleMeta:
    """meta.json, typed. Unknown keys (parity, latency, ...) are kept in `extra`."""

    name: str
    classes: tuple[str, ...]
    input: TensorSpec
    output: TensorSpec
    quantization: str = "unknown"
    preprocess_version: int = PREPROCESS_VERSION
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    )
    size_bytes: int = 0
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: further parts of the bundle (e.g. "detector"): name -> {"file": ..., ...}
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the model's second output, its embedding (N, D), or None for a one-output model
    embedding: TensorSpec | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, where: Path) -> BundleMeta:
        if not isinstance(data, dict):
            raise ModelError(f"{where / META_FILE} is not a JSON object; {REEXPORT}")
        fmt, version = data.get("format"), data.get("format_version")
        if fmt != BUNDLE_FORMAT or version != BUNDLE_FORMAT_VERSION:
            raise ModelError(
                f"{where}: bundle format {fmt!r} version {version!r}, this screwcam reads "
                f"{BUNDLE_FORMAT!r} version {BUNDLE_FORMAT_VERSION}; {REEXPORT}"
            )
        pre = data.get("preprocess_version")
        if pre != PREPROCESS_VERSION:
            raise ModelError(
                f"{where}: model was trained with preprocessing version {pre!r}, this "
                f"screwcam uses version {PREPROCESS_VERSION}; the model would see differently "
                "prepared crops. Retrain (`screwcam train`) and re-export the model with this "
                "screwcam version"
            )
        classes = data.get("classes")
        if (
            not isinstance(classes, list)
            or not classes
            or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)
        ):
            raise ModelError(
                f"{where}: meta.json classes {classes!r} is not a list of distinct names; "
                f"{REEXPORT}"
            )
        parts = data.get("parts", {})
        if not isinstance(parts, dict) or not all(isinstance(v, dict) for v in parts.values()):
            raise ModelError(f"{where}: meta.json parts {parts!r} is not an object of objects")
        return cls(
            name=str(data.get("name", where.name)),
            classes=tuple(classes),
            input=TensorSpec.from_json(data.get("input"), "input", where),
            output=TensorSpec.from_json(data.get("output"), "output", where),
            quantization=str(data.get("quantization", "unknown")),
            preprocess_version=int(pre),
            created=str(data.get("created", "")),
            size_bytes=int(data.get("size_bytes", 0) or 0),
            training=dict(data.get("training") or {}),
            metrics=dict(data.get("metrics") or {}),
            parts={k: dict(v) for k, v in parts.items()},
            embedding=(
                None
                if data.get("embedding") is None
                else TensorSpec.from_json(data["embedding"], "embedding", where)
            ),
            extra={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "classes": list(self.classes),
            "preprocess_version": self.preprocess_version,
            "quantization": self.quantization,
            "input": self.input.to_json(),
            "output": self.output.to_json(),
            "size_bytes": self.size_bytes,
            "training": self.training,
            "metrics": self.metrics,
        }
        if self.embedding is not None:
            out["embedding"] = self.embedding.to_json()
        if self.parts:
            out["parts"] = self.parts
        out.update(self.extra)
        return out

    def replace(self, **changes: Any) -> BundleMeta:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Bundle:
    """A bundle folder whose files have been read and checked (not yet run)."""

    path: Path
    meta: BundleMeta
    labels: tuple[str, ...]

    @property
    def tflite_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def size_bytes(self) -> int:
        return self.tflite_path.stat().st_size

    @property
    def input_dtype(self) -> str:
        return self.meta.input.dtype

    @property
    def quantization(self) -> str:
        return self.meta.quantization

    def part(self, name: str) -> Path | None:
        """The file of a further part (e.g. "detector"), or None if the bundle has none."""
        entry = self.meta.parts.get(name)
        return None if entry is None else self.path / str(entry["file"])


def part_files(entry: Mapping[str, Any]) -> list[str]:
    """The files of a part's entry: its `file` and the `file` of each sub-entry that
    names one (a detector's verifier)."""
    files = [str(entry["file"])]
    for value in entry.values():
        if isinstance(value, Mapping) and isinstance(value.get("file"), str):
            files.append(value["file"])
    return files


def _shape_ok(shape: tuple[int, ...]) -> bool:
    """[N?, 28, 28, 1] or [N?, 28, 28]; N may be -1 or any positive int."""
    return len(shape) in (3, 4) and list(shape[1:]) in (
        [INPUT_SIZE, INPUT_SIZE, 1],
        [INPUT_SIZE, INPUT_SIZE],
    )


def shipped_bundle(name: str = "default") -> Path:
    """A bundle shipped inside the screwcam package (`models/<name>`)."""
    from screwcam.models import SHIPPED

    return SHIPPED / name


def resolve_bundle_path(text: str | Path, base: Path | None = None) -> Path:
    """Where `--model TEXT` points: an absolute path as it is; a relative path next to
    `base` (a config file's folder) or in the working directory if it exists there;
    otherwise `models/NAME` names a bundle shipped with screwcam. When nothing exists
    the path is returned as the user typed it, so the error names what they typed."""
    p = Path(text).expanduser()
    if p.is_absolute():
        return p
    for root in [base] if base is not None else []:
        if (root / p).exists():
            return root / p
    if p.exists():
        return p
    parts = p.parts
    if len(parts) == 2 and parts[0] == "models":
        shipped = shipped_bundle(parts[1])
        if shipped.exists():
            return shipped
    return p


def read_bundle(path: str | Path) -> Bundle:
    """Read and check the bundle in folder `path` (or the folder of its model.tflite).
    Raises ModelError naming what is wrong and what to do."""
    path = Path(path)
    if path.is_file() and path.name == MODEL_FILE:
        path = path.parent
    if not path.is_dir():
        raise ModelError(
            f"model bundle {path} does not exist; pass a folder made by `screwcam export` "
            f"(e.g. {DEFAULT_BUNDLE})"
        )
    missing = [n for n in (MODEL_FILE, LABELS_FILE, META_FILE) if not (path / n).is_file()]
    if missing:
        hint = (
            f"run `screwcam export {path}` first"
            if (path / "model.keras").is_file()
            else "a bundle needs model.tflite, labels.txt and meta.json (`screwcam export`)"
        )
        raise ModelError(f"model bundle {path} lacks {', '.join(missing)}; {hint}")
    try:
        data = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path / META_FILE}: {exc}; {REEXPORT}") from exc
    meta = BundleMeta.from_json(data, path)
    try:
        text = (path / LABELS_FILE).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path / LABELS_FILE}: {exc}; {REEXPORT}") from exc
    labels = tuple(ln.strip() for ln in text.splitlines() if ln.strip())
    if labels != meta.classes:
        raise ModelError(
            f"{path / LABELS_FILE} lists {list(labels)}, meta.json says {list(meta.classes)}; "
            f"the files come from different exports, {REEXPORT}"
        )
    if not _shape_ok(meta.input.shape):
        raise ModelError(
            f"{path}: model input shape {list(meta.input.shape)} is not "
            f"[N, {INPUT_SIZE}, {INPUT_SIZE}, 1]; screwcam feeds {INPUT_SIZE}x{INPUT_SIZE} "
            "gray crops. Retrain the model for this input and re-export it"
        )
    out_shape = meta.output.shape
    if len(out_shape) != 2 or out_shape[1] != len(labels):
        raise ModelError(
            f"{path}: model output shape {list(out_shape)} is not [N, {len(labels)}] for the "
            f"{len(labels)} labels; retrain and re-export"
        )
    emb = meta.embedding
    if emb is not None and (len(emb.shape) != 2 or emb.shape[1] < 1):
        raise ModelError(
            f"{path}: model embedding shape {list(emb.shape)} is not [N, D]; {REEXPORT}"
        )
    if emb is not None and (emb.name is None or emb.name == meta.output.name):
        raise ModelError(
            f"{path}: meta.json does not name the embedding and probability outputs apart; "
            f"{REEXPORT}"
        )
    for name, entry in meta.parts.items():
        file = entry.get("file")
        if not isinstance(file, str) or not (path / file).is_file():
            raise ModelError(f"{path}: bundle part {name!r} names file {file!r}, which is missing")
        for extra in part_files(entry)[1:]:
            if not (path / extra).is_file():
                raise ModelError(
                    f"{path}: bundle part {name!r} names file {extra!r}, which is missing; "
                    f"{REEXPORT}"
                )
        pre = entry.get("preprocess_version", PREPROCESS_VERSION)
        if pre != meta.preprocess_version:
            raise ModelError(
                f"{path}: bundle part {name!r} was made for preprocessing version {pre!r}, "
                f"the classifier for version {meta.preprocess_version}; the two parts come "
                "from different screwcam versions. Re-export both with this screwcam version"
            )
    return Bundle(path=path, meta=meta, labels=labels)


def _write_files(
    folder: Path, items: list[tuple[str, bytes | str]], *, drop_first: Path | None = None
) -> None:
    """Write every (name, content) to a temporary name in `folder` first, then rename
    them all in order (meta.json last), so a reader never sees a half-written file.
    `drop_first` is removed once everything is staged, before the renames."""
    staged: list[tuple[Path, Path]] = []
    try:
        for name, data in items:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.chmod(tmp, 0o644)
            staged.append((Path(tmp), folder / name))
        if drop_first is not None:
            drop_first.unlink(missing_ok=True)
        for part, final in staged:
            os.replace(part, final)
    finally:
        for part, _ in staged:
            part.unlink(missing_ok=True)


def write_bundle(
    folder: str | Path,
    meta: BundleMeta,
    files: Mapping[str, bytes | str],
    *,
    force: bool = False,
) -> Path:
    """Write a bundle into `folder` (created if needed, readable by the service's user):
    `files` maps file names (model.tflite, parts, model card, ...) to contents; labels.txt
    comes from `meta.classes` and meta.json from `meta`. Every file is written under a
    temporary name and renamed; meta.json goes last, so a reader never sees a half-written
    bundle. An existing bundle is replaced only with `force`. Returns the folder."""
    folder = Path(folder)
    if (folder / META_FILE).exists() and not force:
        raise ModelError(f"{folder} already holds a model bundle; pass --force to replace it")
    if MODEL_FILE not in files:
        raise ValueError("a bundle needs model.tflite")
    folder.mkdir(parents=True, exist_ok=True, mode=0o755)
    contents = dict(files)
    contents[LABELS_FILE] = "\n".join(meta.classes) + "\n"
    size = len(contents[MODEL_FILE])
    meta_text = json.dumps(meta.replace(size_bytes=size).to_json(), indent=2) + "\n"
    # meta.json last: the bundle is complete once its meta.json is in place again
    _write_files(folder, [*contents.items(), (META_FILE, meta_text)], drop_first=folder / META_FILE)
    return folder


def add_part(
    folder: str | Path, name: str, entry: Mapping[str, Any], files: Mapping[str, bytes | str]
) -> Path:
    """Add (or replace) the part `name` of the existing bundle in `folder`: its files and
    its entry under `parts` in meta.json; everything else in the bundle stays as it is.
    Files go to temporary names and are renamed; meta.json goes last, so a reader sees
    either the old bundle or the new one. Re-runnable after the classifier was replaced."""
    folder = Path(folder)
    bundle = read_bundle(folder)
    file = entry.get("file")
    if not isinstance(file, str) or file not in files:
        raise ValueError(f"part {name!r} must name one of its files, got {file!r}")
    if file in (MODEL_FILE, LABELS_FILE, META_FILE):
        raise ValueError(f"part {name!r} may not replace the bundle's own {file}")
    data = json.loads((bundle.path / META_FILE).read_text(encoding="utf-8"))
    data.setdefault("parts", {})[name] = dict(entry)
    meta_text = json.dumps(data, indent=2) + "\n"
    _write_files(folder, [*files.items(), (META_FILE, meta_text)])
    return folder
