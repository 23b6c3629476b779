#!/usr/bin/env bash
# Float vs integer (fixed and affine) generated C on the sample models:
# top-1 on the Fashion-MNIST test set (`potc eval`), median microseconds of
# one inference (batch 1, one thread, the driver's --time), flash (weights
# and quantization parameters, NAME_WEIGHT_BYTES) and arena bytes, and
# onnxruntime's float time on the same model.
#
#   bench/quant.sh [BUILD_DIR]        (default: build; needs its potc)
#
# Env: N (timed runs, default 20000), CFLAGS (default -O3 -march=native),
# LIMIT (test images, default all 10000), CALIB (calibration images, 500).
# The table goes to stdout and bench/results/quant.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
potc=${1:-$root/build}/potc
n=${N:-20000}
cflags=${CFLAGS:-"-O3 -march=native"}
limit=${LIMIT:-0}
py=/usr/bin/python3
ds=/usr/share/datasets/fashion-mnist
calib="--calib $ds/train-images-idx3-ubyte.gz --calib-count ${CALIB:-500} --no-progress"
data="--data $ds/t10k-images-idx3-ubyte.gz --labels $ds/t10k-labels-idx1-ubyte.gz"
[ "$limit" -gt 0 ] && data="$data --limit $limit"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
ort_dir=${POTC_ORT_DIR:-/opt/potc-ort}
have_ort=0
(cd "$ort_dir" 2>/dev/null && node -e 'require("onnxruntime-node")') >/dev/null 2>&1 && have_ort=1

configs=("float" "fixed" "affine" "fixed --wbits 4" "affine --wbits 4")
out=$root/bench/results/quant.md
mkdir -p "$(dirname "$out")"
{
echo "Generated C built with \`cc $cflags\` ($(cc --version | head -1)); batch 1, one thread, median of $n runs."
echo "Calibration: ${CALIB:-500} training images; accuracy on $([ "$limit" -gt 0 ] && echo "the first $limit" || echo "all 10000") test images."
echo
echo "| model | mode | top-1 | median us | vs float C | flash bytes | arena bytes | onnxruntime float us |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for m in fmnist_cnn fmnist_mobilenet; do
	d=$root/samples/$m
	$py -c "import numpy as np; a=np.load('$d/ref_input.npy'); np.save('$t/in1.npy', a[:1])"
	ort=n/a
	[ $have_ort = 1 ] && ort=$(node "$root/scripts/ort_run.js" "$d/model.onnx" "$t/in1.npy" --bench "$n" 2>/dev/null |
		awk '/^median_us/ {print $2}')
	fus=
	for c in "${configs[@]}"; do
		q=""; [ "$c" != float ] && q="--quant $c $calib"
		# shellcheck disable=SC2086
		"$potc" "$d/model.onnx" -o "$t/m.c" --name m --driver "$t/main.c" $q >/dev/null
		cc -std=c99 $cflags "$t/m.c" "$t/main.c" -o "$t/prog" -lm
		us=$("$t/prog" "$t/in1.npy" -o "$t/o.npy" --time "$n" 2>&1 | awk '/median_us/ {print $2}')
		[ "$c" = float ] && fus=$us
		# shellcheck disable=SC2086
		acc=$("$potc" eval "$d/model.onnx" $data $q --no-progress 2>/dev/null |
			awk -v c="$c" 'c == "float" && /^float/ {print $2} c != "float" && NR > 6 && /^(fixed|affine)/ {print $3}')
		# the header's figures for this very build (they depend on the target)
		printf '#include <stdio.h>\n#include "m.h"\nint main(void) { printf("%%lld %%lld\\n", (long long)M_WEIGHT_BYTES, (long long)M_ARENA_BYTES); return 0; }\n' > "$t/sz.c"
		cc $cflags -I"$t" "$t/sz.c" -o "$t/sz"
		read -r flash arena < <("$t/sz")
		ratio=$($py -c "print('%.2fx' % ($fus / $us))")
		echo "| $m | $c | $acc | $us | $ratio | $flash | $arena | $ort |"
	done
done
} | tee "$out"
