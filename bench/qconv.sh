#!/bin/sh
# Quantized vs float generated C on the Fashion-MNIST samples, batch 1, one
# thread: median microseconds of NAME_run per target flag set, onnxruntime
# (float, scripts/ort_run.js, when installed: scripts/setup_ort.sh), and
# whether the quantized program's outputs equal `potc run --quant` (the
# integer evaluator) on the 16 reference images.  Other processes on the
# cores inflate the times: compare rows of one run.
#   bench/qconv.sh [BUILD_DIR]   (default build-h4; needs its potc built)
# Env: QUANT (fixed|affine, default fixed), N (iterations, default 20000),
# FLAGS (space-separated list of flag sets, '+' for spaces).
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
potc=${1:-$root/build-h4}/potc
quant=${QUANT:-fixed}
n=${N:-20000}
flags=${FLAGS:-"-O3+-march=native -O3+-mavx2+-mfma -O3"}
calib="--calib /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --calib-count 200"
py=/usr/bin/python3
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
ort_dir=${POTC_ORT_DIR:-/opt/potc-ort}
printf '| model | flags | float us | int8 us | float/int8 | onnxruntime us | ort/int8 | int8 = evaluator |\n|---|---|---:|---:|---:|---:|---:|---|\n'
for m in fmnist_cnn fmnist_mobilenet; do
	d=$root/samples/$m
	$py -c "import numpy as np; a=np.load('$d/ref_input.npy'); np.save('$t/in1.npy', a[:1])"
	$potc "$d/model.onnx" -o "$t/f.c" --name f --driver "$t/fm.c" >/dev/null
	$potc "$d/model.onnx" -o "$t/q.c" --name q --driver "$t/qm.c" --quant "$quant" $calib >/dev/null
	$potc run "$d/model.onnx" "$d/ref_input.npy" -o "$t/ev.npy" --quant "$quant" $calib >/dev/null
	ot=n/a
	if command -v node >/dev/null 2>&1 && [ -d "$ort_dir/node_modules/onnxruntime-node" ]; then
		ot=$(POTC_ORT_DIR=$ort_dir node "$root/scripts/ort_run.js" "$d/model.onnx" "$t/in1.npy" --bench "$n" 2>/dev/null |
			awk '/^median_us/ { print $2 }')
		ot=${ot:-n/a}
	fi
	for f in $flags; do
		f=$(echo "$f" | tr + ' ')
		cc -std=c99 $f "$t/f.c" "$t/fm.c" -o "$t/fp" -lm
		cc -std=c99 -Wall -Wextra -Werror $f "$t/q.c" "$t/qm.c" -o "$t/qp"
		ft=$("$t/fp" "$t/in1.npy" -o "$t/fo.npy" --time "$n" 2>&1 | awk '/median_us/ {print $2}')
		qt=$("$t/qp" "$t/in1.npy" -o "$t/qo.npy" --time "$n" 2>&1 | awk '/median_us/ {print $2}')
		"$t/qp" "$d/ref_input.npy" -o "$t/qa.npy"
		eq=$($py -c "import numpy as np; print('yes' if np.array_equal(np.load('$t/qa.npy'), np.load('$t/ev.npy')) else 'NO')")
		r=$($py -c "print('%.2f' % ($ft / $qt))")
		ro=$($py -c "print('%.2f' % ($ot / $qt))" 2>/dev/null || echo n/a)
		echo "| $m | \`$f\` | $ft | $qt | $r | $ot | $ro | $eq |"
	done
done
