#!/usr/bin/env bash
# Golden error tests: for every NAME.onnx here, `potc NAME.onnx -o OUT.c`
# must exit 1, print exactly NAME.err on stderr, and leave no OUT.c.
# Usage errors: for every usage_NAME.args (a whole command line, @OUT@ for
# the output path), potc must exit 2, print exactly usage_NAME.err and
# leave no output.
# Under valgrind (VALGRIND=1) any leak or invalid access also fails.
set -u
potc=${1:?usage: run.sh PATH/TO/potc}
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
for model in *.onnx; do
  name=${model%.onnx}
  [ -f "$name.err" ] || { echo "FAIL $name: no $name.err"; fail=$((fail+1)); continue; }
  args=(); [ -f "$name.args" ] && read -r -a args < "$name.args"
  wrap=(timeout 30)
  [ "${VALGRIND:-0}" = 1 ] && wrap+=(valgrind -q --leak-check=full --error-exitcode=99)
  "${wrap[@]}" "$potc" "$model" -o "$tmp/out.c" "${args[@]}" 2> "$tmp/err" > /dev/null
  rc=$?
  if [ $rc -ne 1 ]; then
    echo "FAIL $name: exit $rc, want 1"; head -3 "$tmp/err"; fail=$((fail+1))
  elif ! diff -u "$name.err" "$tmp/err" > "$tmp/diff"; then
    echo "FAIL $name: stderr differs"; cat "$tmp/diff"; fail=$((fail+1))
  elif [ -e "$tmp/out.c" ]; then
    echo "FAIL $name: left an output file"; fail=$((fail+1))
  else
    pass=$((pass+1))
  fi
  rm -f "$tmp/out.c" "$tmp/out.h"
done
for argf in usage_*.args; do
  name=${argf%.args}
  [ -f "$name.err" ] || { echo "FAIL $name: no $name.err"; fail=$((fail+1)); continue; }
  read -r -a args < "$argf"
  args=("${args[@]//@OUT@/$tmp/out.c}")
  wrap=(timeout 30)
  [ "${VALGRIND:-0}" = 1 ] && wrap+=(valgrind -q --leak-check=full --error-exitcode=99)
  "${wrap[@]}" "$potc" "${args[@]}" 2> "$tmp/err" > /dev/null
  rc=$?
  if [ $rc -ne 2 ]; then
    echo "FAIL $name: exit $rc, want 2"; head -3 "$tmp/err"; fail=$((fail+1))
  elif ! diff -u "$name.err" "$tmp/err" > "$tmp/diff"; then
    echo "FAIL $name: stderr differs"; cat "$tmp/diff"; fail=$((fail+1))
  elif [ -e "$tmp/out.c" ]; then
    echo "FAIL $name: left an output file"; fail=$((fail+1))
  else
    pass=$((pass+1))
  fi
  rm -f "$tmp/out.c" "$tmp/out.h"
done
echo "bad_inputs: $pass passed, $fail failed"
[ $fail -eq 0 ]
