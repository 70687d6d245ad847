"""train-verifier with its weights averaged over the second half of the epochs
(stochastic weight averaging, Izmailov et al. 2018), to see whether the verifier's
ranking of boxes moves less between draws and holds up better on unseen looks.

    .venv/bin/python -P docs/notes/verifier/swa.py DETECTOR_DIR SEED

The recipe's `train-verifier` call (like_recipe.py), except that the verifier it keeps
is the mean of the weights after each of epochs 7-12 (the constant learning rate
unchanged; the network has no batch normalization, so nothing needs re-estimating after
averaging)."""

import logging
import os
import sys

import numpy as np

import screwcam.training.verifier as V

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run with python -P
from like_recipe import train_like_recipe  # noqa: E402  (docs/notes/verifier/like_recipe.py)


def train(crops, labels, kinds, epochs, seed):
    import keras

    fit = keras.Model.fit
    snapshots = []
    trained = {}

    def fit_and_keep(self, *args, **kwargs):  # V.train fits one epoch a call
        history = fit(self, *args, **kwargs)
        snapshots.append([w.copy() for w in self.get_weights()])
        trained["model"] = self
        return history

    keras.Model.fit = fit_and_keep
    try:
        inference, loss = _train(crops, labels, kinds, epochs, seed)
    finally:
        keras.Model.fit = fit
    late = snapshots[epochs // 2 :]
    # the inference model shares its layers with the training model: averaging the
    # training model's weights sets the inference model's too
    trained["model"].set_weights([np.mean(ws, axis=0) for ws in zip(*late, strict=True)])
    V.log.info("weights averaged over epochs %d-%d", epochs // 2 + 1, epochs)
    return inference, loss


_train = V.train
V.train = train
if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train_like_recipe(sys.argv[1], int(sys.argv[2]))
