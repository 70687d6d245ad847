#!/usr/bin/env bash
# The exact recipe of the head detector in models/default/ (the bundle's `detector`
# part), using only screwcam's own commands. Run from the repository root with the
# [train] extra installed, after (or independently of) make_default_model.sh:
#
#   training/make_default_detector.sh        # ~25 min on 2 busy shared cores
#
# 1. train the shipped detector on scenes of our renderer on synthetic surfaces
#    ("render") and on real photographs with clutter ("photo"); test it on held-out
#    scenes of both, on the independent 3-D generator's scenes ("gen2", never trained
#    on) and on the demo camera's ground truth
# 2. leave one family out: a detector trained on "render" only (tested on "photo" and
#    "gen2"), one trained on "photo" only (tested on "render" and "gen2")
# 3. add the detector to models/default as its `detector` part, the leave-one-out
#    numbers in its meta and model card (`export-detector --into`; re-runnable, and
#    `export-detector models/default --into models/default` restores the part after
#    the classifier's recipe has rewritten meta.json)
set -euo pipefail
cd "$(dirname "$0")/.."

SCREWCAM=${SCREWCAM:-.venv/bin/screwcam}
[ -x "$SCREWCAM" ] || SCREWCAM=".venv/bin/python -m screwcam.cli"
WORK=${WORK:-build/default-detector}
SCENES=${SCENES:-4000}
EPOCHS=${EPOCHS:-10}
LOFO_SCENES=${LOFO_SCENES:-2000}
LOFO_EPOCHS=${LOFO_EPOCHS:-6}
OUT=${OUT:-models/default}

mkdir -p "$WORK"
$SCREWCAM train-detector "$WORK/detector" --families render,photo \
    --test-families render,photo,gen2 --scenes "$SCENES" --epochs "$EPOCHS" --seed 0 --force
$SCREWCAM train-detector "$WORK/lofo-render" --families render \
    --test-families render,photo,gen2 --scenes "$LOFO_SCENES" --epochs "$LOFO_EPOCHS" \
    --seed 1 --force
$SCREWCAM train-detector "$WORK/lofo-photo" --families photo \
    --test-families render,photo,gen2 --scenes "$LOFO_SCENES" --epochs "$LOFO_EPOCHS" \
    --seed 2 --force
$SCREWCAM export-detector "$WORK/detector" --into "$OUT" \
    --held-out "$WORK/lofo-render" "$WORK/lofo-photo"
echo "models/default: detector part updated from $WORK/detector"
