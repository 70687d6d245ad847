"""The five drive types, in the thesis's label order. Files keep these ids and
names; people see the English names."""

from .errors import DatasetError

CLASSES: tuple[str, ...] = ("innensechskant", "philips", "pozidriv", "sechskant", "torx")
ENGLISH: dict[str, str] = {
    "innensechskant": "hex socket",
    "philips": "Phillips",
    "pozidriv": "Pozidriv",
    "sechskant": "hex head",
    "torx": "Torx",
}
NUM_CLASSES = len(CLASSES)


def valid_labels_text() -> str:
    return ", ".join(f"{i} {name} ({ENGLISH[name]})" for i, name in enumerate(CLASSES))


def label_id(value: "str | int") -> int:
    """Turn a label id (0-4, as int or digit string), a thesis name or an English
    name into the label id. Anything else raises DatasetError listing the valid ones."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < NUM_CLASSES:
            return value
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit() and 0 <= int(text) < NUM_CLASSES:
            return int(text)
        lowered = text.lower()
        for i, name in enumerate(CLASSES):
            if lowered in (name, ENGLISH[name].lower()):
                return i
    raise DatasetError(f"unknown label {value!r}; valid labels are: {valid_labels_text()}")


def display_name(label: int) -> str:
    """English name for a label id, e.g. 4 -> 'Torx'."""
    return ENGLISH[CLASSES[label]]
