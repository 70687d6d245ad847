"""Metrics and text/HTML reports shared by `train`, `export` and `batch-test`.

Numpy and OpenCV only: `screwcam batch-test` imports this and must stay
TensorFlow-free (it runs on the device too).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from screwcam.classes import CLASSES, ENGLISH, NUM_CLASSES


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(5, 5) int64 counts; rows = true class, columns = predicted class."""
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def per_class(cm: np.ndarray) -> dict[str, dict[str, float]]:
    """precision / recall / F1 / n per class (thesis names as keys) from a confusion matrix."""
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(CLASSES):
        tp = float(cm[i, i])
        predicted = float(cm[:, i].sum())
        actual = float(cm[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "n": int(actual),
        }
    return out


def per_condition(
    y_true: np.ndarray, y_pred: np.ndarray, conditions: Sequence[str] | np.ndarray
) -> dict[str, dict[str, float]]:
    """Accuracy and count per condition ("" = no condition recorded)."""
    conds = np.asarray(conditions).astype(str)
    out: dict[str, dict[str, float]] = {}
    for cond in sorted(set(conds.tolist())):
        mask = conds == cond
        n = int(mask.sum())
        acc = float((y_true[mask] == y_pred[mask]).mean()) if n else 0.0
        out[cond] = {"accuracy": round(acc, 6), "n": n}
    return out


def family_parts(condition: str) -> list[tuple[str, str]]:
    """The KEY=VALUE parts of a family-named condition ("gen=render3d/finish=rusty");
    [] for a plain condition such as "dim"."""
    out = []
    for part in condition.split("/"):
        key, sep, value = part.partition("=")
        if sep and key:
            out.append((key, value))
    return out


def per_family(
    y_true: np.ndarray, y_pred: np.ndarray, conditions: Sequence[str] | np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """Accuracy and count per value of every family recorded in the conditions as
    KEY=VALUE parts ("gen=render3d/finish=rusty/..."): {family: {value: {accuracy, n}}}.
    Conditions without such parts are left out."""
    keyed: dict[str, dict[str, list[int]]] = {}
    hits = np.asarray(y_true) == np.asarray(y_pred)
    for i, cond in enumerate(np.asarray(conditions).astype(str).tolist()):
        for key, value in family_parts(cond):
            slot = keyed.setdefault(key, {}).setdefault(value, [0, 0])
            slot[0] += int(hits[i])
            slot[1] += 1
    return {
        key: {v: {"accuracy": round(c / n, 6), "n": n} for v, (c, n) in sorted(vals.items())}
        for key, vals in keyed.items()
    }


def count_conditions(conditions: Sequence[str] | np.ndarray) -> dict[str, Any]:
    """How many samples each condition has, the way `evaluate` reports them: family-named
    conditions per family value ({"per_family": {family: {value: n}}}), plain ones per
    condition ({"per_condition": {condition: n}}). A dataset of 6 families has thousands of
    combinations; counting those would make meta.json megabytes long."""
    conds = np.asarray(conditions).astype(str).tolist()
    families: dict[str, dict[str, int]] = {}
    for cond in conds:
        for key, value in family_parts(cond):
            slot = families.setdefault(key, {})
            slot[value] = slot.get(value, 0) + 1
    if families:
        return {
            "per_condition": {},
            "per_family": {k: dict(sorted(v.items())) for k, v in families.items()},
        }
    return {"per_condition": {c: conds.count(c) for c in sorted(set(conds))}, "per_family": {}}


def evaluate(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    conditions: Sequence[str] | np.ndarray | None = None,
) -> dict[str, Any]:
    """The metrics dict used in metrics.json and batch-test --json."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    cm = confusion_matrix(y_true, y_pred)
    n = int(len(y_true))
    families = per_family(y_true, y_pred, conditions) if conditions is not None else {}
    result: dict[str, Any] = {
        "accuracy": round(float((y_true == y_pred).mean()) if n else 0.0, 6),
        "n": n,
        "classes": list(CLASSES),
        "per_class": per_class(cm),
        # family-named conditions are reported per family value instead (one combination
        # of six families per image would make a table as long as the test set)
        "per_condition": per_condition(y_true, y_pred, conditions)
        if conditions is not None and not families
        else {},
        "per_family": families,
        "confusion": cm.tolist(),
    }
    return result


def pozidriv_as_phillips(result: dict[str, Any]) -> tuple[int, int]:
    """(Pozidriv heads read as Phillips, Pozidriv heads) from a result's confusion matrix."""
    cm = result["confusion"]
    poz, phil = CLASSES.index("pozidriv"), CLASSES.index("philips")
    return int(cm[poz][phil]), int(sum(cm[poz]))


def format_text(result: dict[str, Any], title: str = "") -> str:
    """A human-readable summary with English class names."""
    lines = []
    if title:
        lines.append(title)
    lines.append(f"overall accuracy: {result['accuracy'] * 100:.2f}%  ({result['n']} images)")
    lines.append("")
    lines.append(f"{'class':<12} {'precision':>9} {'recall':>7} {'F1':>6} {'n':>6}")
    for name in CLASSES:
        pc = result["per_class"][name]
        lines.append(
            f"{ENGLISH[name]:<12} {pc['precision'] * 100:8.2f}% {pc['recall'] * 100:6.2f}% "
            f"{pc['f1'] * 100:5.1f}% {pc['n']:>6}"
        )
    conds = result.get("per_condition") or {}
    if conds and list(conds) != [""]:
        lines.append("")
        lines.append(f"{'condition':<24} {'accuracy':>8} {'n':>6}")
        for cond, c in conds.items():
            lines.append(f"{cond or '(none)':<24} {c['accuracy'] * 100:7.2f}% {c['n']:>6}")
    for family, values in (result.get("per_family") or {}).items():
        lines.append("")
        lines.append(f"{family:<24} {'accuracy':>8} {'n':>6}")
        for value, c in values.items():
            lines.append(f"  {value:<22} {c['accuracy'] * 100:7.2f}% {c['n']:>6}")
    wrong, n_poz = pozidriv_as_phillips(result)
    if n_poz:
        lines.append("")
        lines.append(f"Pozidriv read as Phillips: {wrong} / {n_poz}")
    lines.append("")
    lines.append("confusion matrix (rows = true, columns = predicted):")
    short = [ENGLISH[c] for c in CLASSES]
    width = max(len(s) for s in short) + 1
    lines.append(" " * width + "".join(f"{s:>{width}}" for s in short))
    for name, row in zip(short, result["confusion"], strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def png_data_uri(image: np.ndarray, scale: int = 1) -> str:
    """A gray/BGR uint8 image as an inline data: URI (PNG)."""
    if scale > 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _confusion_html(cm: list[list[int]]) -> str:
    arr = np.asarray(cm, dtype=np.float64)
    rows = arr.sum(axis=1, keepdims=True)
    frac = np.divide(arr, rows, out=np.zeros_like(arr), where=rows > 0)
    head = "".join(f"<th>{html.escape(ENGLISH[c])}</th>" for c in CLASSES)
    body = []
    for i, name in enumerate(CLASSES):
        cells = []
        for j in range(NUM_CLASSES):
            f = frac[i, j]
            if i == j:
                color = f"rgba(46,160,67,{0.15 + 0.85 * f:.2f})"
            else:
                color = f"rgba(218,54,51,{min(1.0, 0.1 + 3 * f):.2f})" if arr[i, j] else "#fff"
            cells.append(f'<td style="background:{color}">{int(arr[i, j])}</td>')
        body.append(f"<tr><th>{html.escape(ENGLISH[name])}</th>{''.join(cells)}</tr>")
    return (
        '<table class="cm"><tr><th>true \\ predicted</th>'
        + head
        + "</tr>"
        + "".join(body)
        + "</table>"
    )


def html_report(
    result: dict[str, Any],
    mistakes: Sequence[dict[str, Any]],
    title: str,
    subtitle: str = "",
    max_mistakes: int | None = None,
) -> str:
    """One self-contained HTML page: summary, per-class and per-condition tables,
    confusion matrix and a thumbnail of every mistake (inline base64 PNGs)."""
    pcs = "".join(
        f"<tr><td>{html.escape(ENGLISH[n])}</td><td>{p['precision'] * 100:.2f}%</td>"
        f"<td>{p['recall'] * 100:.2f}%</td><td>{p['f1'] * 100:.2f}%</td><td>{p['n']}</td></tr>"
        for n, p in result["per_class"].items()
    )
    conds = "".join(
        f"<tr><td>{html.escape(c or '(none)')}</td><td>{v['accuracy'] * 100:.2f}%</td>"
        f"<td>{v['n']}</td></tr>"
        for c, v in (result.get("per_condition") or {}).items()
    )
    fams = "".join(
        f"<tr><td>{html.escape(f)}</td><td>{html.escape(v)}</td>"
        f"<td>{c['accuracy'] * 100:.2f}%</td><td>{c['n']}</td></tr>"
        for f, values in (result.get("per_family") or {}).items()
        for v, c in values.items()
    )
    fam_table = (
        "<h2>Per family</h2><table><tr><th>family</th><th>value</th><th>accuracy</th>"
        f"<th>n</th></tr>{fams}</table>"
        if fams
        else ""
    )
    shown = list(mistakes if max_mistakes is None else mistakes[:max_mistakes])
    cards = "".join(
        '<figure><img src="{src}" width="84" height="84" alt="">'
        "<figcaption>true <b>{t}</b><br>predicted <b>{p}</b> {c:.0f}%<br>"
        '<span class="path">{path}</span></figcaption></figure>'.format(
            src=png_data_uri(m["image"], scale=3),
            t=html.escape(ENGLISH[CLASSES[m["true"]]]),
            p=html.escape(ENGLISH[CLASSES[m["pred"]]]),
            c=100 * float(m["confidence"]),
            path=html.escape(str(m.get("path", ""))),
        )
        for m in shown
    )
    more = (
        f"<p>{len(mistakes) - len(shown)} more mistakes not shown.</p>"
        if len(shown) < len(mistakes)
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
.cm td{{min-width:4em;text-align:center}}
figure{{display:inline-block;margin:4px;width:120px;vertical-align:top;font-size:12px}}
figure img{{image-rendering:pixelated;display:block}}
.path{{color:#777;word-break:break-all}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(subtitle)}</p>
<p><b>Overall accuracy: {result["accuracy"] * 100:.2f}%</b> on {result["n"]} images,
{len(mistakes)} mistakes.</p>
<h2>Confusion matrix</h2>
{_confusion_html(result["confusion"])}
<h2>Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>n</th></tr>{pcs}</table>
<h2>Per condition</h2>
<table><tr><th>condition</th><th>accuracy</th><th>n</th></tr>{conds}</table>
{fam_table}
<h2>Mistakes</h2>
{cards or "<p>None.</p>"}{more}
</body></html>
"""
