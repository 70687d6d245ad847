"""`screwcam bench`: the benchmark (speed, latency, streaming cost, footprint, training time).

A tool, not device code: nothing in screwcam imports it. `keras_bench` holds its
TensorFlow half and is run only when TensorFlow is installed."""
