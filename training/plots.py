"""Training plots (matplotlib, Agg backend; imported only by train/export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from screwcam.classes import CLASSES, ENGLISH


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    tmp.replace(path)


def training_curves(history: dict[str, list[float]], path: Path, title: str = "") -> None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        if key in history:
            ax1.plot(epochs, history[key], label=label)
    for key, label in (("accuracy", "train (augmented)"), ("val_accuracy", "validation")):
        if key in history:
            ax2.plot(epochs, np.asarray(history[key]) * 100, label=label)
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy %", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    _save(fig, path)
    plt.close(fig)


def confusion_matrix(cm: list[list[int]], path: Path, title: str = "") -> None:
    plt = _plt()
    arr = np.asarray(cm)
    names = [ENGLISH[c] for c in CLASSES]
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    rows = arr.sum(axis=1, keepdims=True)
    frac = np.divide(arr, rows, out=np.zeros(arr.shape), where=rows > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            ax.text(
                j,
                i,
                str(arr[i, j]),
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    _save(fig, path)
    plt.close(fig)
