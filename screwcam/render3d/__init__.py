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

Families for hold-out evaluation: STYLES, FINISHES, LIGHTS, BACKGROUNDS, VIEWS (info
keys style, finish, light, background, view_family; info['view'] is the tilt angle).
"""

from .geometry import DISTRACTORS, LABEL_STYLES, STYLES
from .materials import BACKGROUNDS, FINISHES
from .render import CLASS_NAMES, GENERATOR, MAX_TILT, VIEWS, render_head, render_scene, view_family
from .shading import LIGHTS

__all__ = [
    "BACKGROUNDS",
    "CLASS_NAMES",
    "DISTRACTORS",
    "FINISHES",
    "GENERATOR",
    "LABEL_STYLES",
    "LIGHTS",
    "MAX_TILT",
    "STYLES",
    "VIEWS",
    "render_head",
    "render_scene",
    "view_family",
]
