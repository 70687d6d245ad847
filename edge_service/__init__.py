"""The live service: the frame pipeline (camera thread, analyzer, render thread), the
web app and `screwcam serve`. Nothing in this package imports TensorFlow."""
