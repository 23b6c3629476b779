#!/usr/bin/env bash
# The demo on a fresh Debian machine: set up, build potc, compile the
# Fashion-MNIST CNN to C, build it, run it on the 10,000 real test images
# and print accuracy and time per inference.  MODEL=... picks another sample.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
model=${MODEL:-samples/fmnist_cnn/model.onnx}
out=out/demo
mkdir -p "$out"
[ -f "$out/test_images.npy" ] || /usr/bin/python3 samples/export_fmnist_npy.py "$out"
echo "== potc $model -o $out/model.c --driver $out/main.c"
build-release/potc "$model" -o "$out/model.c" --driver "$out/main.c"
grep -E '#define [A-Z0-9_]*_(ARENA|WEIGHT)_BYTES' "$out/model.h"
echo "== cc -O3 model.c main.c"
cc -std=c99 -O3 -march=native -Wall -Wextra -Werror "$out/model.c" "$out/main.c" -o "$out/prog" -lm
echo "== running on test_images.npy (10,000 Fashion-MNIST test images)"
"$out/prog" "$out/test_images.npy" -o "$out/logits.npy" --time 2000 2> "$out/time.txt"
/usr/bin/python3 scripts/accuracy.py "$out/logits.npy" "$out/test_labels.npy"
echo "time per inference (median of 2000, batch 1, one thread): $(awk '/median_us/ {print $2}' "$out/time.txt") us"
