"""train-verifier with the learning rate decayed to zero over its epochs (cosine) instead
of constant, to see whether the verifier's P(head) scale moves less between draws.

    .venv/bin/python -P docs/notes/verifier/lr_decay.py DETECTOR_DIR SEED

The recipe's `train-verifier` call (like_recipe.py), except for the schedule (cosine:
Adam's learning rate 2e-3 -> 0 over all steps)."""

import math
import os
import sys

import keras

import screwcam.training.verifier as V

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run with python -P
from like_recipe import train_like_recipe  # noqa: E402  (docs/notes/verifier/like_recipe.py)

steps = {}
_adam = keras.optimizers.Adam
_train = V.train


def adam(lr, **kw):
    return _adam(keras.optimizers.schedules.CosineDecay(lr, steps["n"]), **kw)


def train(crops, labels, kinds, epochs, seed):
    steps["n"] = epochs * math.ceil(len(labels) / 128)
    return _train(crops, labels, kinds, epochs, seed)


keras.optimizers.Adam = adam
V.train = train
train_like_recipe(sys.argv[1], int(sys.argv[2]))
