"""MODEL_CARD.md for a trained (and, after export, bundled) model."""

from __future__ import annotations

from typing import Any

from screwcam.classes import CLASSES, ENGLISH


def holdout_section(doc: dict[str, Any], train_name: str = "", test_name: str = "") -> str:
    """The leave-one-family-out table of `screwcam holdout` (holdout.json) as Markdown."""
    head = "| held out | train n | test n | held-out accuracy | in-family accuracy | "
    head += " | ".join(f"{ENGLISH[c]} recall" for c in CLASSES)
    head += " | Pozidriv as Phillips |"
    lines = [
        f"Leave-one-family-out (`{doc['preset']}`, {doc['epochs']} epochs, seed {doc['seed']}, "
        "Keras model): each row is a model trained WITHOUT that family and tested only on it; "
        "in-family = the same model on the rest of the test pool."
        + (f" Train pool `{train_name}`, test pool `{test_name}`." if train_name else ""),
        "",
        head,
        "|" + "---|" * (6 + len(CLASSES)),
    ]
    for r in doc["rows"]:
        n_of = [sum(row) for row in r["confusion"]]  # a class the family lacks: "-"
        recalls = " | ".join(
            f"{r['recall'][c] * 100:.1f}%" if n_of[i] else "-" for i, c in enumerate(CLASSES)
        )
        wrong, n = r["pozidriv_as_phillips"]
        lines.append(
            f"| {r['hold']} | {r['train_n']} | {r['test_n']} | **{r['accuracy'] * 100:.2f}%** "
            f"| {r['in_family_accuracy'] * 100:.2f}% | {recalls} | {wrong}/{n} |"
        )
    return "\n".join(lines) + "\n"


def model_card(name: str, metrics: dict[str, Any], bundle: dict[str, Any] | None = None) -> str:
    test = metrics["test"]
    data = metrics["data"]
    lines = [
        f"# Model card: {name}",
        "",
        f"- Preset: `{metrics['preset']}` ({metrics['description']}), "
        f"{metrics['parameters']:,} parameters.",
        "- Input: one 28x28 gray crop of a screw head, uint8 0..255, made by "
        f"`screwcam.preprocess` (preprocessing version {metrics['preprocess_version']}); "
        "Rescaling(1/255) is the model's first layer.",
        "- Output: probabilities of the 5 drive types, in this order: "
        + ", ".join(f"{i} {c} ({ENGLISH[c]})" for i, c in enumerate(CLASSES))
        + ".",
        f"- Trained with `screwcam train --preset {metrics['preset']} --seed {metrics['seed']}` "
        f"on `{data['source']}`: {data['train']['n']} images "
        f"({int(data['validation_fraction'] * 100)}% held out for validation / early stopping), "
        f"{metrics['epochs']} of at most {metrics['epochs_max']} epochs "
        f"(best epoch {metrics['best_epoch']}), augmentation: {metrics['augmentation']}, "
        f"{metrics['train_seconds']:.0f} s.",
        "",
        "## Test results (Keras model)",
        "",
        f"Accuracy **{test['accuracy'] * 100:.2f}%** on {test['n']} test images "
        f"(test split of `{data['source']}`).",
        "",
        "| class | precision | recall | F1 | n |",
        "|---|---|---|---|---|",
    ]
    for c in CLASSES:
        pc = test["per_class"][c]
        lines.append(
            f"| {ENGLISH[c]} | {pc['precision'] * 100:.2f}% | {pc['recall'] * 100:.2f}% "
            f"| {pc['f1'] * 100:.2f}% | {pc['n']} |"
        )
    conds = test.get("per_condition") or {}
    if conds and list(conds) != [""]:
        lines += ["", "| condition | accuracy | n |", "|---|---|---|"]
        for c, v in conds.items():
            lines.append(f"| {c or '(none)'} | {v['accuracy'] * 100:.2f}% | {v['n']} |")
    families = test.get("per_family") or {}
    if families:
        lines += ["", "| family | value | accuracy | n |", "|---|---|---|---|"]
        for family in ("gen", "light", "view"):
            for value, v in (families.get(family) or {}).items():
                lines.append(f"| {family} | {value} | {v['accuracy'] * 100:.2f}% | {v['n']} |")
    lines += ["", "Plots: `training_curves.png`, `confusion_matrix.png`."]
    if bundle:
        lines += [
            "",
            "## Device bundle",
            "",
            f"- `model.tflite`: {bundle['quantization']} quantization, "
            f"{bundle['size_bytes'] / 1024:.1f} KB, input {bundle['input']['dtype']} "
            f"{bundle['input']['shape']}, output {bundle['output']['dtype']}.",
            f"- Keras vs TFLite top-1 agreement on the test split: "
            f"{bundle['parity']['agreement'] * 100:.2f}% ({bundle['parity']['n']} images); "
            f"TFLite test accuracy {bundle['parity']['tflite_accuracy'] * 100:.2f}%.",
            f"- Latency: {bundle['latency']['per_crop_ms']:.3f} ms per crop (median of "
            f"{bundle['latency']['repeats']} runs, batch of {bundle['latency']['batch']}, "
            f"{bundle['latency']['threads']} threads, on the export machine) and "
            f"{bundle['latency']['single_ms']:.3f} ms for a single crop.",
        ]
    extra = metrics.get("batch_test")
    if extra:
        lines += ["", "## Batch test", "", extra]
    lines += [
        "",
        "## Limits",
        "",
        "- Only knows the 5 drive types; anything else is forced into one of them.",
        "- Expects one head per crop, roughly centred, as the head detector (or the "
        "classical finder `screwcam.heads`) crops them.",
        "- Numbers above are on the data named there; measure on your own camera's images "
        "with `screwcam batch-test` before trusting it.",
        "",
    ]
    return "\n".join(lines)


def with_section(card: str, heading: str, section: str) -> str:
    """The card with the section that starts with the line `heading` ("## ...") replaced
    by `section` (which starts with that heading), or appended if there is none."""
    start = card.find(heading + "\n")
    if start < 0:
        return card.rstrip("\n") + "\n\n" + section
    end = card.find("\n## ", start + len(heading))
    rest = "" if end < 0 else card[end:]
    return card[:start] + section + rest
