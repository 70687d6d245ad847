"""Two bundles on the same crops, paired: accuracy of each, the difference and its
standard error per crop (LiteRT, 1 view, the device code).

    python -P paired_bundles.py X_test.npy OLD_BUNDLE NEW_BUNDLE
(y_test.npy next to X_test.npy)
"""

import sys
from pathlib import Path

import numpy as np

from screwcam.classifier import Classifier, load_bundle

x_path = Path(sys.argv[1])
x = np.load(x_path)
y = np.load(x_path.with_name(x_path.name.replace("X_", "y_")))
right = []
for path in sys.argv[2:4]:
    clf = Classifier(load_bundle(path, num_threads=2))
    probs = np.concatenate([clf.classify(x[i : i + 256]) for i in range(0, len(x), 256)])
    right.append(probs.argmax(axis=1) == y)
    print(f"{path}: {right[-1].mean() * 100:.1f} % of {len(y)}")
diff = right[1].astype(float) - right[0].astype(float)
se = diff.std(ddof=1) / np.sqrt(len(diff)) * 100
print(f"paired difference {diff.mean() * 100:+.1f} points, SE {se:.1f}")
