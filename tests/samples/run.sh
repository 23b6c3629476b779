#!/usr/bin/env bash
# Sample models against the outputs their training script saved (torch, eval
# mode): the generated C (gcc and clang, -Werror) and `potc run` must match
# ref_output.npy within rtol 1e-4, atol 1e-5.
set -u
potc=${1:?usage: run.sh PATH/TO/potc}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmp="/usr/bin/python3 $root/tests/compare_npy.py"
pass=0 fail=0
check() { # check NAME CMD...: one result
  local name=$1; shift
  if out=$("$@" 2>&1); then pass=$((pass+1)); echo "ok   $name: ${out##*$'\n'}"
  else fail=$((fail+1)); echo "FAIL $name: $out" | head -5; fi
}
for dir in "$root"/samples/*/; do
  [ -f "$dir/ref_input.npy" ] || continue
  s=$(basename "$dir")
  for model in "$dir"/model*.onnx; do
    m=$s/$(basename "$model" .onnx)
    w=$tmp/${s}_$(basename "$model" .onnx); mkdir -p "$w"
    check "$m: potc run" bash -c "'$potc' run '$model' '$dir/ref_input.npy' -o '$w/run.npy' && $cmp '$w/run.npy' '$dir/ref_output.npy'"
    for cc in gcc clang; do
      check "$m: generated C ($cc)" bash -c "'$potc' '$model' -o '$w/model.c' --driver '$w/main.c' &&
        $cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic '$w/model.c' '$w/main.c' -o '$w/prog_$cc' -lm &&
        '$w/prog_$cc' '$dir/ref_input.npy' -o '$w/c_$cc.npy' && $cmp '$w/c_$cc.npy' '$dir/ref_output.npy'"
    done
  done
done
echo "samples: $pass passed, $fail failed"
[ $fail -eq 0 ]
