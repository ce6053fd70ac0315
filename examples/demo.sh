#!/usr/bin/env bash
# The main job, end to end, on the bundled example (README "Quick start"):
#   install -> train LeNet on scikit-learn's digits -> export (int8, rank 16) ->
#   build and run on the host (plain and under ASan/UBSan) and on emulated Cortex-M cores
#   -> accuracy and the report.
# Everything goes to build/demo/.  Pass --fashion-mnist DIR to train on Fashion-MNIST instead.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/demo
step() { printf '\n=== %s\n' "$*"; }

step "1/6 install what is missing (Debian packages; .venv/ with torch 2.13.0 and edgecompile)"
bash scripts/install.sh
source scripts/python.sh             # PY: the environment install.sh set up
edgecompile() { "$(dirname "$PY")/edgecompile" "$@"; }

step "2/6 train LeNet on scikit-learn's bundled digits, save it with torch.export (.pt2)"
"$PY" examples/train.py --model lenet -o "$OUT" "$@"
MODEL=$(ls "$OUT"/lenet_*.pt2 | head -1)

step "3/6 export: edgecompile export $MODEL --bits 8 --rank 16 --calib $OUT/calib.npy -o $OUT/out"
edgecompile export "$MODEL" --bits 8 --rank 16 --calib "$OUT/calib.npy" -o "$OUT/out"

step "4/6 build and run on the host, compare every byte with the simulator"
edgecompile verify "$OUT/out"
edgecompile verify "$OUT/out" --sanitize --count 64

step "5/6 run on emulated Cortex-M cores under QEMU"
for target in qemu-m0plus qemu-m4 qemu-m7 qemu-m55; do
    edgecompile verify "$OUT/out" --target "$target" --count 64
done

step "6/6 accuracy on the held-out test set"
"$PY" examples/evaluate.py "$OUT/out" --model "$MODEL" --test-x "$OUT/test_x.npy" --test-y "$OUT/test_y.npy"
echo
echo "report: $OUT/out/report.md   generated C: $OUT/out/src/   standalone: make -C $OUT/out test"
