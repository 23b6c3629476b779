#!/usr/bin/env bash
# Quantized accuracy of the sample models on Fashion-MNIST (10000 test
# images), --quant fixed calibrated on the first 500 training images:
#   - `potc eval` float top-1 equals what the training script measured with
#     torch (samples/*/accuracy.txt);
#   - int8 top-1 within 0.5 points of float, 4-bit weights (--wbits 4)
#     within 2 points (numbers parsed from the --report JSON);
#   - the report's bit widths, accumulator bounds and input SQNR (recomputed
#     with numpy from the reported Quant) hold;
#   - `potc run --quant` writes float32 outputs on the output's quantization
#     grid, and they are the predictions `potc eval` scores.
# JOBS (default: nproc) evaluations run at once.  Last line:
# "quant: N passed, N failed".
set -u
potc=${1:?usage: run.sh PATH/TO/potc}
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
chk="$py $root/tests/quant/check.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
jobs=${JOBS:-$(nproc)}
pass=0 fail=0

# The test set as the samples' scripts prepare it; calibration images the
# same way (pixels / 255), from the training split.
$py "$root/samples/export_fmnist_npy.py" "$tmp" > /dev/null || { echo "quant: 0 passed, 1 failed"; exit 1; }
PYTHONPATH="$root/samples" $py -c "
import numpy as np, fmnist
x, _ = fmnist.load('train')
np.save('$tmp/calib.npy', np.ascontiguousarray(x[:500], dtype=np.float32))" ||
  { echo "quant: 0 passed, 1 failed"; exit 1; }
data=$tmp/test_images.npy labels=$tmp/test_labels.npy

# eval_job NAME MODEL [options]: the evaluation, in the background.
eval_job() {
  local name=$1 model=$2; shift 2
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  "$potc" eval "$model" --data "$data" --labels "$labels" --quant fixed --calib "$tmp/calib.npy" \
    --no-progress --report "$tmp/$name.json" "$@" > "$tmp/$name.out" 2>&1 &
}

# check NAME CMD...: one result.
check() {
  local name=$1; shift
  if out=$("$@" 2>&1); then pass=$((pass+1)); echo "ok   $name: ${out##*$'\n'}"
  else fail=$((fail+1)); echo "FAIL $name: $out" | head -5; fi
}

samples=(fmnist_cnn fmnist_mobilenet)
for s in "${samples[@]}"; do
  eval_job "${s}_int8" "$root/samples/$s/model.onnx"
  eval_job "${s}_w4" "$root/samples/$s/model.onnx" --wbits 4
done
wait

for s in "${samples[@]}"; do
  dir=$root/samples/$s
  for cfg in int8:0.005:8 w4:0.02:4; do
    IFS=: read -r kind drop wbits <<< "$cfg"
    n=${s}_$kind
    check "$s $kind: eval" bash -c "[ -s '$tmp/$n.json' ] || { cat '$tmp/$n.out'; exit 1; }
      $chk report --report '$tmp/$n.json' --accuracy '$dir/accuracy.txt' --max-drop $drop \
        --data '$data' --labels '$labels' --wbits $wbits"
  done
  # potc run --quant on the reference batch, then eval scoring those very
  # predictions as labels: its quantized top-1 must be exactly 1.
  w=$tmp/run_$s; mkdir -p "$w"
  check "$s: run --quant" bash -c "
    '$potc' run '$dir/model.onnx' '$dir/ref_input.npy' -o '$w/out.npy' --quant fixed --calib '$tmp/calib.npy' --no-progress &&
    $chk grid '$w/out.npy' '$tmp/${s}_int8.json' &&
    $chk argmax '$w/out.npy' '$w/pred.npy' &&
    '$potc' eval '$dir/model.onnx' --data '$dir/ref_input.npy' --labels '$w/pred.npy' --quant fixed \
      --calib '$tmp/calib.npy' --no-progress --report '$w/r.json' > /dev/null &&
    $py -c \"import json, sys; r = json.load(open('$w/r.json')); sys.exit(0 if r['quant_top1'] == 1 else 'eval scores %s of run --quant predictions' % r['quant_top1'])\" &&
    echo 'outputs on the grid, eval agrees with run'"
done
echo "quant: $pass passed, $fail failed"
[ $fail -eq 0 ]
