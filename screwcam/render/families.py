"""One head from any of the generators, named by its families, for `screwcam synth`.

Generators:
- `classic`: `render_sample`, the demo camera's look (families: light = condition);
- `render2d`: `screwcam.render.variety.render_head` (style, finish, light, bg, view);
- `render3d`: `screwcam.render3d.render_head`, built independently on branch gen2
  (style, finish, light, bg, view); its silhouettes count as light=silhouette;
- `sdf`: `screwcam.render_sdf.render_head`, a third, independently built generator
  (ray-marched signed distance fields; style, finish, light, bg, view). Not part of
  the mixes `mix`/`all`;
- `pbr`: `screwcam.render_pbr.render_head`, a fourth, independently built generator
  (triangle meshes path-traced by Mitsuba 3 under photo environment maps; style, finish,
  light, bg, view). Needs Mitsuba (the [train] extra). Not part of the mixes either.

A sample's families become its `condition` text, e.g.
``gen=render3d/style=pan/finish=rusty/light=dim/bg=photo/view=oblique``: the manifest
keeps it, `batch-test` reports accuracy per family value, and a `FamilyFilter`
(``--only KEY=VALUE`` / ``--exclude KEY=VALUE``) keeps whole families out of a set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..frames import Box

GENERATORS: tuple[str, ...] = ("classic", "render2d", "render3d", "sdf", "pbr")
KEYS: tuple[str, ...] = ("gen", "style", "finish", "light", "bg", "view")
#: how often a value is drawn, where not uniform (renormalized over the allowed values)
WEIGHTS: dict[str, dict[str, float]] = {"view": {"top": 0.45, "oblique": 0.4, "tiny": 0.15}}


def parse_family(text: str) -> tuple[str, str]:
    """'finish=rusty' -> ('finish', 'rusty'); raises ValueError naming the problem."""
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not value:
        raise ValueError(f"expected KEY=VALUE (e.g. finish=rusty), got {text!r}")
    if key not in KEYS:
        raise ValueError(f"unknown family {key!r} in {text!r}; families: {', '.join(KEYS)}")
    return key, value


def families_of(condition: str) -> dict[str, str]:
    """'gen=render2d/light=dim' -> {'gen': 'render2d', 'light': 'dim'} (other parts ignored)."""
    out = {}
    for part in str(condition).split("/"):
        key, sep, value = part.partition("=")
        if sep and key:
            out[key] = value
    return out


@dataclass(frozen=True)
class FamilyFilter:
    """Which family values a set may contain: `only` keeps just the listed values of a
    family, `exclude` drops the listed ones (both: key -> values)."""

    only: dict[str, frozenset[str]] = field(default_factory=dict)
    exclude: dict[str, frozenset[str]] = field(default_factory=dict)

    @staticmethod
    def parse(only: list[str] | None = None, exclude: list[str] | None = None) -> FamilyFilter:
        def group(items: list[str] | None) -> dict[str, frozenset[str]]:
            out: dict[str, set[str]] = {}
            for text in items or []:
                key, value = parse_family(text)
                out.setdefault(key, set()).add(value)
            return {k: frozenset(v) for k, v in out.items()}

        return FamilyFilter(group(only), group(exclude))

    def allowed(self, key: str, values: tuple[str, ...]) -> tuple[str, ...]:
        keep = [v for v in values if v not in self.exclude.get(key, ())]
        if key in self.only:
            keep = [v for v in keep if v in self.only[key]]
        return tuple(keep)

    def describe(self) -> str:
        parts = [f"only {k}={'|'.join(sorted(v))}" for k, v in self.only.items()]
        parts += [f"without {k}={'|'.join(sorted(v))}" for k, v in self.exclude.items()]
        return ", ".join(parts) or "all families"


def _render3d():
    try:
        from .. import render3d
    except ImportError as exc:  # gen2 not merged, or scikit-image missing
        raise ValueError(
            f"the render3d generator is not available ({exc}); install the [train] extra"
        ) from exc
    return render3d


def family_values(generator: str, label: int) -> dict[str, tuple[str, ...]]:
    """Every value each family can take for `label` in `generator`."""
    from .scene import CONDITIONS

    if generator == "classic":
        return {"light": CONDITIONS}
    if generator == "render2d":
        from . import variety

        styles = variety.HEX_STYLES if label == 3 else variety.RECESS_STYLES
        return {
            "style": styles,
            "finish": variety.FINISHES,
            "light": variety.LIGHTS,
            "bg": variety.BACKGROUNDS,
            "view": variety.VIEWS,
        }
    if generator == "render3d":
        r3 = _render3d()
        return {
            "style": tuple(r3.LABEL_STYLES[label]),
            "finish": tuple(r3.FINISHES),
            "light": (*r3.LIGHTS, "silhouette"),
            "bg": tuple(r3.BACKGROUNDS),
            "view": ("top", "oblique", "tiny"),
        }
    if generator == "sdf":
        from .. import render_sdf

        return {
            "style": render_sdf.LABEL_STYLES[label],
            "finish": render_sdf.FINISHES,
            "light": render_sdf.LIGHTS,
            "bg": render_sdf.BACKGROUNDS,
            "view": render_sdf.VIEWS,
        }
    if generator == "pbr":
        from .. import render_pbr  # no Mitsuba yet: it is imported on the first render

        return {
            "style": render_pbr.LABEL_STYLES[label],
            "finish": render_pbr.FINISHES,
            "light": render_pbr.LIGHTS,
            "bg": render_pbr.BACKGROUNDS,
            "view": render_pbr.VIEWS,
        }
    raise ValueError(f"unknown generator {generator!r}; choose one of {', '.join(GENERATORS)}")


def condition_text(families: dict[str, str]) -> str:
    return "/".join(f"{k}={families[k]}" for k in KEYS if k in families)


def render_one(
    generator: str,
    rng: np.random.Generator,
    label: int,
    size: int,
    filt: FamilyFilter | None = None,
    light: str | None = None,
    named: bool = False,
) -> tuple[np.ndarray, Box, str] | None:
    """(BGR image, box of the whole head, condition text) of one head, or None when the
    filter leaves no value of some family for this label (e.g. only style=pan for a hex
    head). `light` forces the light (used for the classic generator's round robin).
    The classic generator's condition is just its light ("dim"), as it always was,
    unless `named` (in a mix): then "gen=classic/light=dim"."""
    filt = filt or FamilyFilter()
    if generator not in filt.allowed("gen", GENERATORS):
        return None
    values = family_values(generator, label)
    pick: dict[str, str] = {"gen": generator}
    for key, options in values.items():
        options = filt.allowed(key, options)
        if not options:
            return None
        if key == "light" and light is not None:
            if light not in options:
                return None
            pick[key] = light
        elif key in WEIGHTS:
            p = np.asarray([WEIGHTS[key].get(v, 1.0) for v in options], np.float64)
            pick[key] = options[int(rng.choice(len(options), p=p / p.sum()))]
        else:
            pick[key] = options[int(rng.integers(len(options)))]
    if generator == "classic":
        from .scene import render_sample

        image, box = render_sample(rng, label, pick["light"], size=size)
        return image, box, condition_text(pick) if named else pick["light"]
    if generator == "render2d":
        from . import variety

        image, box, _ = variety.render_head(
            rng,
            label,
            size,
            style=pick["style"],
            finish=pick["finish"],
            light=pick["light"],
            background=pick["bg"],
            view=pick["view"],
        )
        if pick["light"] == "silhouette":
            pick["bg"] = "flat"
        return image, box, condition_text(pick)
    if generator in ("sdf", "pbr"):
        if generator == "sdf":
            from .. import render_sdf as module
        else:
            from .. import render_pbr as module

        image, box, _ = module.render_head(
            rng,
            label,
            size,
            style=pick["style"],
            finish=pick["finish"],
            light=pick["light"],
            bg=pick["bg"],
            view=pick["view"],
        )
        return image, box, condition_text(pick)
    r3 = _render3d()
    kwargs: dict[str, Any] = {
        "style": pick["style"],
        "finish": pick["finish"],
        "background": pick["bg"],
    }
    if pick["light"] == "silhouette":
        kwargs["silhouette"] = True
    else:
        kwargs["light"] = pick["light"]
    if pick["view"] == "oblique":
        kwargs["tilt"] = float(rng.uniform(10.0, 30.0))
    else:
        kwargs["tilt"] = float(rng.uniform(0.0, 10.0))
    if pick["view"] == "tiny":
        kwargs["lowres"] = int(rng.integers(14, 22))
    image, box, _ = r3.render_head(rng, label, size=size, **kwargs)
    x, y, w, h = (int(v) for v in box)
    if pick["light"] == "silhouette":
        pick["bg"] = "flat"
    return image, Box(x, y, w, h), condition_text(pick)


def jitter_box(rng: np.random.Generator, box: Box, width: int, height: int) -> Box:
    """A box like an imperfect detector's: centre shifted by ~7 % of the head's size,
    size scaled by ~12 % (log-normal), aspect changed by ~7 %, kept on the image."""
    side = max(box.w, box.h)
    dx, dy = rng.normal(0.0, 0.07 * side, 2)
    scale = math.exp(float(np.clip(rng.normal(0.0, 0.12), -0.3, 0.35)))
    aspect = math.exp(float(np.clip(rng.normal(0.0, 0.07), -0.2, 0.2)))
    w = max(4.0, box.w * scale * aspect)
    h = max(4.0, box.h * scale / aspect)
    cx = box.x + box.w / 2.0 + dx
    cy = box.y + box.h / 2.0 + dy
    x0 = int(round(min(max(cx - w / 2.0, -w / 2.0), width - w / 2.0)))
    y0 = int(round(min(max(cy - h / 2.0, -h / 2.0), height - h / 2.0)))
    return Box(x0, y0, int(round(w)), int(round(h)))
