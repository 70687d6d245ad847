"""screwcam: recognize the drive type of every screw head a camera sees, live.

The floor plan (one import namespace; the repository's folders map onto it):

    screwcam/            the shared core, imported by everything below, importing none of it
      classes, errors    the five classes; our error types (one line a user can act on)
      frames             Box, Frame, Source base, Truth
      preprocess         where a frame region becomes the model's input (the one function)
      heads              the head finder interface and the classical finder
      sources            camera sources and the one `--source` parser
      dataset            the dataset format (the thesis's .npy arrays + manifest) and loader
      images             reading image files (EXIF orientation applied, one clear error)
      bundle             the model bundle format: typed meta, one reader, one writer
      classifier         the LiteRT runtime of a bundle (never TensorFlow)
      render/            the synthetic renderer: drawing, scene, demo camera, evaluation
      render_sdf/        a third, independent generator (ray-marched signed distance fields)
      timing, cli        small helpers; the `screwcam` command
    capture/      -> screwcam.capture       the capture jobs: record, slice, synth
    training/     -> screwcam.training      train, models, augment, evaluate (batch-test)
    export/       -> screwcam.export        Keras -> the device bundle
    edge_service/ -> screwcam.edge_service  the live service (pipeline, web app, serve)
    bench/        -> screwcam.bench         the benchmark (a tool; nothing imports it)
    models/       -> screwcam.models        the bundles we ship (package data)

Import rule (checked by tests/test_layout.py): the core imports only the core; the jobs
import the core (export may import training, whose models it converts); only `bench`
and `cli` may import any package, and `cli` imports a command's module only when it runs.
"""

__version__ = "0.2.0"
