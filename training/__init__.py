"""Training (Keras 3 on TensorFlow) and evaluation (`screwcam batch-test`). TensorFlow is
imported only inside the functions that train, so importing this package stays cheap."""
