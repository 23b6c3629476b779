#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: set up, build, unit and
# golden tests (ctest), sample models, the ONNX conformance suite, then the
# same again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Last line: "N passed, N failed, N skipped" over all stages.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
jobs=$(nproc)
total_pass=0 total_fail=0 total_skip=0

# stage NAME CMD...: runs CMD, takes its last "N passed, N failed[, N skipped]"
# line (or its exit code when it prints none) into the totals.
stage() {
  local name=$1; shift
  echo "=== $name"
  local log; log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line; line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  if [ -n "$line" ]; then
    local p f s
    count() { grep -oE "[0-9]+ $1" <<<"$line" | grep -oE '[0-9]+' || echo 0; }
    p=$(count passed); f=$(count failed); s=$(count skipped)
    total_pass=$((total_pass+p)); total_fail=$((total_fail+f)); total_skip=$((total_skip+s))
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && total_fail=$((total_fail+1))
  elif [ "$rc" -eq 0 ]; then
    total_pass=$((total_pass+1))
  else
    total_fail=$((total_fail+1))
  fi
  rm -f "$log"
  echo "=== $name: exit $rc"
}

build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON "$@" >/dev/null &&
    cmake --build "$dir" -j"$jobs" 2>&1 | grep -E 'error|warning' ; return "${PIPESTATUS[0]}"
}

ctest_summary() { # ctest with a cmocka-style closing count
  local dir=$1
  local out; out=$(ctest --test-dir "$dir" -j"$jobs" --output-on-failure 2>&1)
  local rc=$?
  echo "$out"
  local tot fail
  tot=$(sed -nE 's/.*tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\2/p' <<<"$out")
  fail=$(sed -nE 's/.*tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\1/p' <<<"$out")
  [ -n "$tot" ] && echo "ctest: $((tot-fail)) passed, $fail failed"
  return $rc
}

stage "build" build "$root/build"
stage "unit and golden tests" ctest_summary "$root/build"
stage "samples" "$root/tests/samples/run.sh" "$root/build/potc"
stage "exporter-style models" "$root/tests/models/run.sh" "$root/build/potc"
stage "conformance" /usr/bin/python3 tests/conformance/run.py --potc "$root/build/potc" --jobs "$jobs"
stage "quantized: generated C = integer evaluator" "$root/tests/quant/bitexact.sh" "$root/build/potc"
stage "quantized: accuracy" "$root/tests/quant/run.sh" "$root/build/potc"

# Sanitizers: the compiler itself under ASan+UBSan on every test above,
# and generated code compiled with -fsanitize=undefined in the conformance run.
stage "build (asan+ubsan)" build "$root/build-san" -DPOTC_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
stage "unit and golden tests (asan+ubsan)" ctest_summary "$root/build-san"
stage "samples (asan+ubsan)" "$root/tests/samples/run.sh" "$root/build-san/potc"
stage "exporter-style models (asan+ubsan)" "$root/tests/models/run.sh" "$root/build-san/potc"
stage "quantized: generated C = integer evaluator (asan+ubsan)" "$root/tests/quant/bitexact.sh" "$root/build-san/potc"
stage "conformance (asan+ubsan)" /usr/bin/python3 tests/conformance/run.py --potc "$root/build-san/potc" \
  --jobs "$jobs" --cflags="-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined"

echo
echo "total: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
