"""The device side: the live service, the LiteRT classifier, and the `screwcam`
command line. Nothing in this package imports TensorFlow."""
