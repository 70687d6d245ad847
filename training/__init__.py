"""Training (Keras 3 on TensorFlow) and batch testing. TensorFlow is imported
only inside the functions that train, so importing this package stays cheap."""
