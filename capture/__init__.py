"""Camera sources, the synthetic renderer, head finding, the one preprocessing
function, and the dataset format. Everything else in screwcam builds on this
package, and nothing here imports TensorFlow."""
