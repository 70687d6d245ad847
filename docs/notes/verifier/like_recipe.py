"""The `train-verifier` call the verifier experiments in this folder share (lr_decay.py,
swa.py): the recipe's verifier on DETECTOR_DIR at one seed, scored only on a few render
scenes (the experiments score every verifier on cached scenes afterwards):

    screwcam train-verifier DIR --scenes 800 --epochs 12 --seed SEED \\
        --thresholds 0.2,0.5 --test-families render --test-scenes 20 --force
"""

from pathlib import Path

import screwcam.training.verifier as V


def train_like_recipe(detector_dir: str, seed: int) -> dict:
    return V.train_verifier(
        Path(detector_dir),
        families=tuple(V.read_entry(Path(detector_dir))["training"]["families"]),
        test_families=("render",),
        scenes=800,
        epochs=12,
        seed=seed,
        test_scenes_n=20,
        force=True,
        thresholds=(0.2, 0.5),
    )
