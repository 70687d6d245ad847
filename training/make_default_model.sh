#!/usr/bin/env bash
# The exact recipe of the bundled model in models/default/, using only screwcam's
# own commands. Run from the repository root with the [train] extra installed:
#
#   training/make_default_model.sh            # ~10 min on 2 cores
#
# 1. render a thesis-sized synthetic dataset (3000 per class, 30 % test ->
#    10500 train / 4500 test, all six lighting conditions incl. silhouettes), seed A
# 2. train the `edge` preset on it
# 3. export to an int8 bundle (parity gate against the Keras model), with the embedding
#    as a second output and base_head.npz (final layer + anchors) for `screwcam adapt`
# 4. batch-test the bundle on a separately rendered per-condition set, seed B
# 5. copy the bundle, its plots, model card and the batch-test results into
#    models/default/ (model.keras too: `screwcam bench` compares it with the
#    bundle, and it can be re-exported, e.g. --quantize float16)
set -euo pipefail
cd "$(dirname "$0")/.."

SCREWCAM=${SCREWCAM:-.venv/bin/screwcam}
[ -x "$SCREWCAM" ] || SCREWCAM=".venv/bin/python -m screwcam.cli"
WORK=${WORK:-build/default-model}
SEED_TRAIN=${SEED_TRAIN:-1}   # seed A: training data
SEED_TEST=${SEED_TEST:-2}     # seed B: held-out test data
SEED_MODEL=${SEED_MODEL:-0}
PER_CLASS=${PER_CLASS:-3000}
TEST_PER_CLASS=${TEST_PER_CLASS:-600}
OUT=models/default

rm -rf "$WORK"
mkdir -p "$WORK"

$SCREWCAM synth --out "$WORK/synth-train" --per-class "$PER_CLASS" --seed "$SEED_TRAIN"
$SCREWCAM synth --out "$WORK/synth-heldout" --per-class "$TEST_PER_CLASS" --seed "$SEED_TEST" \
    --by-condition
$SCREWCAM train --data "$WORK/synth-train" --preset edge --seed "$SEED_MODEL" \
    --out "$WORK/default"
$SCREWCAM export "$WORK/default" --quantize int8 --min-agreement 0.99
$SCREWCAM batch-test --model "$WORK/default" "$WORK/synth-heldout" \
    --json "$WORK/default/batch_test.json" --report "$WORK/default/batch_test.html" \
    --max-mistakes 100 | tee "$WORK/default/batch_test.txt"

{
    echo
    echo "## Held-out batch test (LiteRT, int8)"
    echo
    echo "\`screwcam batch-test\` on $((TEST_PER_CLASS * 5)) crops rendered with a different"
    echo "seed (\`screwcam synth --by-condition --per-class $TEST_PER_CLASS --seed $SEED_TEST\`);"
    echo "full results in \`batch_test.json\` and \`batch_test.html\`."
    echo
    echo '```'
    cat "$WORK/default/batch_test.txt"
    echo '```'
} >> "$WORK/default/MODEL_CARD.md"

mkdir -p "$OUT"
for f in model.keras model.tflite base_head.npz labels.txt meta.json metrics.json \
         training_curves.png confusion_matrix.png MODEL_CARD.md batch_test.json batch_test.html; do
    cp "$WORK/default/$f" "$OUT/$f.tmp"
    mv "$OUT/$f.tmp" "$OUT/$f"
done
echo "models/default updated from $WORK/default"
