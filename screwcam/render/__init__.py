"""The synthetic renderer: the stand-in for a camera and for a real dataset.

- `drawing`: one screw head as a sprite (height map, albedo, masks) from signed-distance shapes.
- `scene`: lighting, surfaces, compositing; `render_sample` (one head, for datasets) and
  `render_empty` (a surface without heads).
- `demo`: `DemoSource`, the fake camera with ground truth; `demo_mosaic`, its frames side
  by side as one photo-sized image.
- `conveyor`: `ConveyorSource`, heads riding across the frame (enter, cross, leave), with
  a track id per head in the ground truth.
- `evaluate`: the classical head finder measured against the demo's ground truth.
"""

from .conveyor import ConveyorSource
from .demo import DemoSource, demo_mosaic
from .drawing import FINISHES, HeadSpec, random_spec
from .scene import BACKGROUNDS, CONDITIONS, DEMO_CONDITIONS, render_empty, render_sample

__all__ = [
    "BACKGROUNDS",
    "CONDITIONS",
    "DEMO_CONDITIONS",
    "ConveyorSource",
    "FINISHES",
    "DemoSource",
    "HeadSpec",
    "demo_mosaic",
    "random_spec",
    "render_empty",
    "render_sample",
]
