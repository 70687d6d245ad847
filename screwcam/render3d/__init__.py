"""render3d: a second, independently built generator of screw-head images.

True 3-D height-field geometry per head style and recess (drawn from ISO 4757 type H
and Z, ISO 10664, hex socket and hex head proportions), physically based shading
(GGX/Cook-Torrance + Lambert, image-based lighting from real photos, cast shadows,
ambient occlusion), an oblique perspective camera with occlusion, and lens/sensor
effects. It shares no drawing code with the project's 2-D renderer, so a model trained
on one can be tested on the other.

    >>> import numpy as np
    >>> from screwcam import render3d
    >>> rng = np.random.default_rng(0)
    >>> img, box, info = render3d.render_head(rng, 2, size=96)          # a Pozidriv head
    >>> scene, heads = render3d.render_scene(rng, size=(640, 480))      # [(box, label, info)]
    >>> img, box, info = render3d.render_distractor(rng, kind="washer")  # not a head

Families for hold-out evaluation: STYLES, FINISHES, LIGHTS, BACKGROUNDS, VIEWS (info
keys style, finish, light, background, view_family; info['view'] is the tilt angle).
Non-heads: DISTRACTOR_KINDS.
"""

from .crops import render_distractor, render_head
from .geometry import LABEL_STYLES, STYLES
from .materials import BACKGROUNDS, FINISHES
from .scene import render_scene
from .shading import LIGHTS
from .stage import CLASS_NAMES, DISTRACTOR_KINDS, GENERATOR, MAX_TILT, VIEWS, view_family

__all__ = [
    "BACKGROUNDS",
    "CLASS_NAMES",
    "DISTRACTOR_KINDS",
    "FINISHES",
    "GENERATOR",
    "LABEL_STYLES",
    "LIGHTS",
    "MAX_TILT",
    "STYLES",
    "VIEWS",
    "render_distractor",
    "render_head",
    "render_scene",
    "view_family",
]
