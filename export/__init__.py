"""Turning a trained Keras model into the bundle the device runs."""
