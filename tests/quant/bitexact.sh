#!/usr/bin/env bash
# Quantized sample models: the generated C must equal the integer reference
# evaluator (`potc run --quant`) bit for bit, on the reference images and on
# adversarial inputs (all max, all min, alternating, zeros, random; one
# file), built with gcc and clang (-Werror, model.c with -mgeneral-regs-only:
# no float register can be used), with -march=native (this CPU's vector
# paths), and again under UBSan, which must stay silent.
# model.c must also build for a Cortex-M0 without pulling in float routines.
# Outputs are compared as float32 .npy with zero tolerance: the driver and
# `potc run` dequantize identically, so equal floats mean equal integers.
set -u
potc=${1:?usage: bitexact.sh PATH/TO/potc}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
calib=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
pass=0 fail=0
check() { # check NAME CMD...: one result
  local name=$1; shift
  if out=$("$@" 2>&1); then pass=$((pass+1)); echo "ok   $name"
  else fail=$((fail+1)); echo "FAIL $name: $out" | head -5; fi
}

$py - "$tmp" "$root/samples/fmnist_cnn/ref_input.npy" <<'PY'
import sys, numpy as np
d = sys.argv[1]
r = np.random.default_rng(3)
shape = (8, 1, 28, 28)
big = np.float32(1e6)
alt = np.indices(shape).sum(axis=0) % 2
ins = {
    "random": r.normal(0.5, 0.6, shape),
    "max": np.full(shape, big),
    "min": np.full(shape, -big),
    "alternating": np.where(alt == 1, big, -big),
    "zeros": np.zeros(shape),
}
ins["ref"] = np.load(sys.argv[2])
# one file, so each configuration calibrates once: the batch rule runs it
# sample by sample in both the driver and `potc run`
np.save(f"{d}/in_all.npy", np.concatenate([v.astype(np.float32) for v in ins.values()]))
PY

configs=("fixed" "affine" "fixed --wbits 4" "affine --wbits 4" "fixed --wbits 6 --abits 12" "fixed --bp max"
         "fixed --weights pot" "fixed --weights apot --acc-bits 16" "affine --weights apot --no-keep-first-last")
arm_cc=$(command -v arm-none-eabi-gcc || true)
for s in fmnist_cnn fmnist_mobilenet; do
  model=$root/samples/$s/model.onnx
  for c in "${configs[@]}"; do
    tag="$s [$c]"
    w=$tmp/$s-${c// /_}; mkdir -p "$w"
    q="--quant $c --calib $calib --calib-count 200 --no-progress"
    if ! "$potc" "$model" -o "$w/model.c" --driver "$w/main.c" $q >"$w/log" 2>&1; then
      fail=$((fail+1)); echo "FAIL $tag: compile: $(head -3 "$w/log")"; continue
    fi
    for cc in gcc clang; do
      check "$tag: $cc -Werror -mgeneral-regs-only" bash -c "
        $cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -mgeneral-regs-only -c '$w/model.c' -o '$w/model_$cc.o' &&
        $cc -std=c99 -O2 -Wall -Wextra -Werror -c '$w/main.c' -I'$w' -o '$w/main_$cc.o' &&
        $cc '$w/model_$cc.o' '$w/main_$cc.o' -o '$w/prog_$cc' -lm"
    done
    # the target paths this CPU has (AVX-512 VNNI/VBMI, AVX2) must agree too
    check "$tag: gcc -O3 -march=native" gcc -std=c99 -O3 -march=native -Wall -Wextra -Werror \
      "$w/model.c" "$w/main.c" -I"$w" -o "$w/prog_native" -lm
    check "$tag: UBSan build" gcc -std=c99 -O1 -g -fsanitize=undefined -fno-sanitize-recover=all \
      "$w/model.c" "$w/main.c" -I"$w" -o "$w/prog_ubsan" -lm
    if [ -n "$arm_cc" ]; then
      check "$tag: cortex-m0, no float routines" bash -c "
        $arm_cc -std=c99 -O2 -Wall -Wextra -Werror -mcpu=cortex-m0 -mthumb -mfloat-abi=soft -c '$w/model.c' -o '$w/m0.o' &&
        ! arm-none-eabi-nm '$w/m0.o' | grep -E ' U (__aeabi_[fd]|__.*(sf|df)[0-9]?\$|.*(float|double))'"
    fi
    for i in "$tmp"/in_all.npy; do
      n="all inputs"
      if ! "$potc" run "$model" "$i" -o "$w/ref.npy" $q >"$w/log" 2>&1; then
        fail=$((fail+1)); echo "FAIL $tag: potc run on $n: $(head -3 "$w/log")"; continue
      fi
      for p in prog_gcc prog_clang prog_native prog_ubsan; do
        check "$tag: $p == evaluator on $n" bash -c "
          '$w/$p' '$i' -o '$w/$p.npy' &&
          $py '$root/tests/compare_npy.py' '$w/$p.npy' '$w/ref.npy' --rtol 0 --atol 0"
      done
    done
  done
done
# Pre-quantized models (tests/quant/make_qdq_models.py: QOperator and QDQ
# forms of one tiny CNN): compiled with --quant and no calibration they keep
# the model's own scales, so the integer evaluator and the generated C must
# reproduce the reference outputs exactly (those equal onnxruntime's).
for m in qop_tiny qdq_tiny; do
  for mode in fixed affine; do
    w=$tmp/$m-$mode; mkdir -p "$w"
    in=$root/tests/quant/tiny_input.npy want=$root/tests/quant/${m}_output.npy
    check "$m [$mode]: potc run --quant == reference" bash -c "
      '$potc' run '$root/tests/quant/$m.onnx' '$in' -o '$w/run.npy' --quant $mode &&
      $py '$root/tests/compare_npy.py' '$w/run.npy' '$want' --rtol 0 --atol 0"
    check "$m [$mode]: generated C == reference" bash -c "
      '$potc' '$root/tests/quant/$m.onnx' -o '$w/model.c' --driver '$w/main.c' --quant $mode &&
      gcc -std=c99 -O2 -Wall -Wextra -Werror -fsanitize=undefined -fno-sanitize-recover=all \
        '$w/model.c' '$w/main.c' -I'$w' -o '$w/prog' -lm &&
      '$w/prog' '$in' -o '$w/c.npy' &&
      $py '$root/tests/compare_npy.py' '$w/c.npy' '$want' --rtol 0 --atol 0"
  done
done

echo "quant bit-exactness: $pass passed, $fail failed"
[ $fail -eq 0 ]
