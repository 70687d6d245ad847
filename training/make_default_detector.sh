#!/usr/bin/env bash
# The exact recipe of the head detector in models/default/ (the bundle's `detector`
# part), using only screwcam's own commands. Run from the repository root with the
# [train] extra installed; independent of the classifier's make_default_model.sh:
#
#   training/make_default_detector.sh           # the shipped detector + leave-one-out runs
#   LOFO=0 training/make_default_detector.sh    # the shipped detector only
#
# 1. the shipped detector: 9000 scenes x 12 epochs, then 6000 fresh scenes x 6 epochs
#    (continued, lower learning rate), a third from each family: our renderer's heads on
#    synthetic surfaces ("render"), on real photographs with clutter ("photo"), and the
#    independent 3-D generator's scenes ("gen2"); tested on held-out scenes of all three
#    and on the demo camera's ground truth; then its second stage (`train-verifier`: a small CNN that looks again at each box
#    the detector proposes, at full resolution, trained on 800 scenes per family), and
#    its box regressor (`train-regressor`: moves each proposed box onto the whole head)
# 2. leave one family out (LOFO=1, the default): for each family, a detector, its
#    verifier and its regressor trained on the other two (6000 scenes x 10 epochs; 800 scenes per family)
#    and tested on the one they never saw; these numbers, not the shipped detector's
#    own, estimate how it does on a new kind of image
# 3. add the detector to models/default as its `detector` part, the leave-one-out
#    numbers in its meta and model card (`export-detector --into`: re-runnable; and
#    `export-detector models/default --into models/default` restores the part after
#    the classifier's recipe has rewritten meta.json)
# 4. `screwcam scene-test`: the whole pipeline on 150 scenes per family, into the card
#
# Times measured on this machine are in docs/notes/detector.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SCREWCAM=${SCREWCAM:-.venv/bin/screwcam}
[ -x "$SCREWCAM" ] || SCREWCAM=".venv/bin/python -m screwcam.cli"
WORK=${WORK:-build/default-detector}
OUT=${OUT:-models/default}
LOFO=${LOFO:-1}
ALL=render,photo,gen2
START=$(date +%s)

mkdir -p "$WORK"
$SCREWCAM train-detector "$WORK/stage1" --families $ALL --test-families $ALL \
    --scenes 9000 --epochs 12 --seed 10 --test-scenes 150 --force
$SCREWCAM train-detector "$WORK/detector" --init "$WORK/stage1" --families $ALL \
    --test-families $ALL --scenes 6000 --epochs 6 --lr 2e-3 --seed 13 --test-scenes 200 \
    --force
# its second stage: a verifier trained on the boxes this detector proposes; its
# thresholds fixed at heat 0.2, P(head) 0.5: validation F1's own choice (0.2, 0.7) drops
# a demo head and a quarter of solid black hex heads (docs/notes/detector.md, session 12)
$SCREWCAM train-verifier "$WORK/detector" --scenes 800 --epochs 12 --seed 0 \
    --test-families $ALL --test-scenes 150 --force --thresholds 0.2,0.5
# its box regressor: moves each proposed box onto the whole head (the heat map sometimes
# boxes the recess alone); tested also on the sdf and pbr scenes no part trained on
$SCREWCAM train-regressor "$WORK/detector" --scenes 800 --epochs 20 --seed 0 \
    --test-families $ALL,sdf,pbr --test-scenes 150 --force
echo "shipped detector, verifier and regressor trained in $(( ($(date +%s) - START + 59) / 60 )) min"

HELD=()
if [ "$LOFO" = 1 ]; then
    for held in render photo gen2; do
        rest=$(echo "$ALL" | tr , '\n' | grep -vx "$held" | paste -sd,)
        $SCREWCAM train-detector "$WORK/without-$held" --families "$rest" \
            --test-families $ALL --scenes 6000 --epochs 10 --seed 20 --test-scenes 150 --force
        # the shipped verifier's thresholds, so that these rows estimate what ships
        $SCREWCAM train-verifier "$WORK/without-$held" --scenes 800 --epochs 12 --seed 0 \
            --test-families $ALL --test-scenes 150 --force --thresholds 0.2,0.5
        $SCREWCAM train-regressor "$WORK/without-$held" --scenes 800 --epochs 20 --seed 0 \
            --test-families $ALL --test-scenes 150 --force
        HELD+=("$WORK/without-$held")
    done
fi

$SCREWCAM export-detector "$WORK/detector" --into "$OUT" ${HELD[@]:+--held-out "${HELD[@]}"}
echo "$OUT: detector part updated from $WORK/detector in $(( ($(date +%s) - START + 59) / 60 )) min"
# the whole pipeline (this detector + the bundle's classifier) on scenes, into the card
$SCREWCAM scene-test --model "$OUT" --scenes 150 --json "$OUT/scene_test.json" --force \
    --update-card
